"""Server addresses as people write them: accepted forms, and refusals that say how to write them."""

from __future__ import annotations

import pytest

from plateforge.addresses import Endpoint, check_address, resolve
from plateforge.client import Client
from plateforge.errors import UsageError


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("127.0.0.1:50061", Endpoint("127.0.0.1", 50061), id="ipv4"),
        pytest.param(" localhost:1 ", Endpoint("localhost", 1), id="name-with-spaces"),
        pytest.param("[::1]:50061", Endpoint("::1", 50061), id="ipv6-bracketed"),
        pytest.param("dns:///pool.farm:50061", None, id="grpc-dns-target"),
        pytest.param("ipv4:127.0.0.1:1,127.0.0.1:2", None, id="grpc-ipv4-list"),
        pytest.param("unix:/tmp/plateforge.sock", None, id="grpc-unix"),
    ],
)
def test_accepted_addresses(address: str, expected: Endpoint | None) -> None:
    assert check_address(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        pytest.param(
            "http://farm01:50061",
            "drop the 'http://': plateforge speaks gRPC, write HOST:PORT (here: farm01:50061)",
            id="http",
        ),
        pytest.param(
            "https://farm01",
            "drop the 'https://': plateforge speaks gRPC, write HOST:PORT (here: farm01:50061)",
            id="https-no-port",
        ),
        pytest.param("grpc://127.0.0.1:7/", "drop the 'grpc://'", id="grpc-url"),
        pytest.param("farm01", "'farm01' has no port: write HOST:PORT (e.g. farm01:50061", id="no-port"),
        pytest.param(":50061", "has no host: write HOST:PORT (e.g. 127.0.0.1:50061)", id="no-host"),
        pytest.param("farm01:http", "the port must be a number from 1 to 65535, got 'http'", id="port-word"),
        pytest.param("farm01:0", "the port must be a number from 1 to 65535, got '0'", id="port-zero"),
        pytest.param("::1:50061", "write an IPv6 address in brackets, [ADDRESS]:PORT", id="ipv6-bare"),
    ],
)
def test_refused_addresses_say_how_to_write_them(address: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_address(address)
    assert message in str(caught.value)


def test_an_unknown_host_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match=r"cannot find the host 'nosuchhost\.invalid' \(.+\): check the name"):
        resolve(Endpoint("nosuchhost.invalid", 50061))
    assert {ip for _, ip in resolve(Endpoint("localhost", 1))} & {"127.0.0.1", "::1"}


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("http://127.0.0.1:1", id="url"),
        pytest.param("127.0.0.1", id="no-port"),
        pytest.param("nosuchhost.invalid:1", id="unknown-host"),
        pytest.param("127.0.0.1:1,nosuchhost.invalid:2", id="one-of-several-unknown"),
    ],
)
def test_the_client_refuses_them_before_connecting(address: str) -> None:
    with pytest.raises(UsageError):
        Client(address)
