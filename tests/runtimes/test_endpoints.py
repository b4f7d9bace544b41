"""Endpoints are checked before ZeroMQ sees them, and a bad one is named with the form expected."""

from __future__ import annotations

import threading

import pytest

from actorfw.node import NodeSettings, connect
from actorfw.node.endpoints import check_endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp://10.0.0.1:7000",
        "tcp://localhost:1",
        "tcp://host.example:65535",
        "tcp://[::1]:7000",
        "ipc:///run/actorfw/n1.sock",
        "ipc://relative.sock",
        "inproc://n1",
    ],
)
def test_a_well_formed_endpoint_is_returned_as_it_is(endpoint: str) -> None:
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://*:7000", "tcp://0.0.0.0:*", "tcp://127.0.0.1:*"])
def test_a_listening_endpoint_may_take_any_interface_or_a_free_port(endpoint: str) -> None:
    assert check_endpoint(endpoint, listen=True) == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("tcp://127.0.0.1", "endpoint 'tcp://127.0.0.1' has no port: expected tcp://HOST:PORT"),
        ("tcp://[::1]", "endpoint 'tcp://[::1]' has no port: expected tcp://HOST:PORT"),
        ("tcp://:7000", "endpoint 'tcp://:7000' has no host: expected tcp://HOST:PORT"),
        ("tcp://h:0", "the port '0' is not a number from 1 to 65535"),
        ("tcp://h:65536", "the port '65536' is not a number from 1 to 65535"),
        ("tcp://h:http", "the port 'http' is not a number from 1 to 65535"),
        ("tcp://h:", "the port '' is not a number from 1 to 65535"),
        ("tcp://h:*", "the port '*' is not a number from 1 to 65535"),
        ("tcp://[::1:7000", "an IPv6 address goes in brackets, then the port"),
        ("ipc://", "endpoint 'ipc://' has no path: expected ipc://PATH"),
        ("inproc://", "has no name: expected inproc://NAME"),
        ("udp://h:7000", "endpoint 'udp://h:7000' is not tcp://HOST:PORT or ipc://PATH"),
        ("10.0.0.1:7000", "endpoint '10.0.0.1:7000' is not tcp://HOST:PORT or ipc://PATH"),
        (7000, "an endpoint is a string (tcp://HOST:PORT or ipc://PATH), not 7000"),
    ],
)
def test_a_malformed_endpoint_is_named_with_the_form_expected(
    endpoint: object, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        check_endpoint(endpoint)
    assert message in str(raised.value)


def test_node_settings_refuse_an_endpoint_without_a_port() -> None:
    with pytest.raises(ValueError, match=r"node n1: endpoint 'tcp://10\.0\.0\.2' has no port"):
        NodeSettings("n1", "ipc:///tmp/n1.sock", {"n2": "tcp://10.0.0.2"}, "data")


def test_connect_refuses_an_endpoint_without_a_port_before_starting_anything() -> None:
    threads = threading.active_count()
    with pytest.raises(ValueError, match=r"node n1: endpoint 'ipc://' has no path"):
        connect({"n1": "ipc://"})
    assert threading.active_count() == threads


def test_connect_over_tcp_without_keys_says_that_tcp_needs_curve_keys() -> None:
    threads = threading.active_count()
    with pytest.raises(ValueError) as raised:
        connect({"n1": "tcp://10.0.0.1:7000", "n2": "ipc:///tmp/n2.sock"})
    message = str(raised.value)
    assert message.startswith("n1 is reached over tcp://, which needs CURVE keys: pass curve=")
    assert "load_curve" in message and "peer keys" not in message
    assert threading.active_count() == threads
