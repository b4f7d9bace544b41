"""Endpoints, checked before ZeroMQ sees them.

A node listens at, and connects to, ZeroMQ endpoints: ``tcp://HOST:PORT``
across hosts, ``ipc://PATH`` on one machine (and ``inproc://NAME`` inside
one process). ZeroMQ answers a malformed one with ``ZMQError: Invalid
argument``, at bind or connect time, naming neither the mistake nor the
form it expected; :func:`check_endpoint` says both, before any socket
exists.

Example::

    check_endpoint("tcp://10.0.0.1:7000")     # returns it
    check_endpoint("tcp://10.0.0.1")          # ValueError: ... has no port: expected ...
"""

from __future__ import annotations

__all__ = ["ENDPOINT_FORMS", "check_endpoint"]

ENDPOINT_FORMS = "tcp://HOST:PORT or ipc://PATH"
"""The forms of endpoint a node takes, as error messages name them."""

_TCP_EXAMPLE = "e.g. tcp://10.0.0.1:7000"
_IPC_EXAMPLE = "e.g. ipc:///run/actorfw/n1.sock"


def check_endpoint(endpoint: object, listen: bool = False) -> str:
    """``endpoint`` itself if it is a well-formed endpoint; else a ValueError saying why.

    Args:
        endpoint: ``tcp://HOST:PORT`` (HOST a name, an IPv4 address, an
            IPv6 address in brackets, or ``*`` / an interface to listen on;
            PORT from 1 to 65535), ``ipc://PATH`` or ``inproc://NAME``.
        listen: the endpoint is to be bound: PORT may also be ``*`` (a
            free port chosen at bind time).

    Raises:
        ValueError: the message quotes the endpoint and the form expected.
    """
    if not isinstance(endpoint, str):
        raise ValueError(f"an endpoint is a string ({ENDPOINT_FORMS}), not {endpoint!r}")
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc", "inproc"):
        raise ValueError(f"endpoint {endpoint!r} is not {ENDPOINT_FORMS}")
    if scheme == "ipc":
        if not rest:
            raise ValueError(
                f"endpoint {endpoint!r} has no path: expected ipc://PATH, {_IPC_EXAMPLE}"
            )
        return endpoint
    if scheme == "inproc":
        if not rest:
            raise ValueError(f"endpoint {endpoint!r} has no name: expected inproc://NAME")
        return endpoint
    if rest.startswith("["):  # an IPv6 address: [::1]:7000
        close = rest.find("]")
        host, port = rest[: close + 1], rest[close + 1 :]
        if close < 0 or (port and not port.startswith(":")):
            raise ValueError(
                f"endpoint {endpoint!r}: an IPv6 address goes in brackets, then the port: "
                "tcp://[ADDRESS]:PORT, e.g. tcp://[::1]:7000"
            )
        port = port[1:]
        has_port = bool(rest[close + 1 :])
    else:
        host, colon, port = rest.rpartition(":")
        has_port = bool(colon)
        if not has_port:
            host = rest
    if not has_port:
        raise ValueError(
            f"endpoint {endpoint!r} has no port: expected tcp://HOST:PORT, {_TCP_EXAMPLE}"
        )
    if not host:
        raise ValueError(
            f"endpoint {endpoint!r} has no host: expected tcp://HOST:PORT, {_TCP_EXAMPLE}"
        )
    if listen and port == "*":
        return endpoint
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(
            f"endpoint {endpoint!r}: the port {port!r} is not a number from 1 to 65535 "
            f"(expected tcp://HOST:PORT, {_TCP_EXAMPLE})"
        )
    return endpoint
