"""Causal broadcast's sans-IO core: delivery in causal order with holdback (see ``delivery``)."""

from actorfw.protocols.causal.delivery import (
    CausalMember,
    CausalOptions,
    Data,
    DataRun,
    Delivery,
    Effects,
    Forgotten,
    Logged,
    LoggedRun,
    Record,
    Refusal,
    Status,
)

__all__ = [
    "CausalMember",
    "CausalOptions",
    "Data",
    "DataRun",
    "Delivery",
    "Effects",
    "Forgotten",
    "Logged",
    "LoggedRun",
    "Record",
    "Refusal",
    "Status",
]
