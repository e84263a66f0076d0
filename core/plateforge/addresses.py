"""Server addresses as users write them, checked before any connection is tried.

A plateforge address is ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6), or one of gRPC's own target
forms (``dns:///name:port``, ``ipv4:``, ``ipv6:``, ``unix:``), passed through as they are. What
people actually type instead (``http://host:50061``, a host without its port, a typo in the
host name) is refused here at once with what was wrong and how to write it, instead of costing
a connection timeout and ending in gRPC's "failed to connect to all addresses".
"""

from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from plateforge.errors import UsageError

__all__ = ["DEFAULT_PORT", "Endpoint", "check_address", "resolve"]

#: ``plateforge serve``'s port unless told otherwise; suggested when an address lacks one.
DEFAULT_PORT = 50061

#: gRPC target schemes a user may write on purpose; everything after them is gRPC's to parse.
_GRPC_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: A name lookup that takes longer than this is left to the connection attempt (and its deadline).
_RESOLVE_SECONDS = 1.5


@dataclass(frozen=True)
class Endpoint:
    """One ``HOST:PORT`` address, split."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def check_address(address: str) -> Endpoint | None:
    """The host and port of ``address``, or None for a gRPC target form (``dns:///…``); a
    :class:`UsageError` saying how to write it when it is neither."""
    text = address.strip()
    url = _URL_SCHEME.match(text)
    if url and url.group(1).lower() != "dns":
        rest = text[url.end() :].split("/", 1)[0]
        example = rest if ":" in rest.strip("[]") or rest.startswith("[") else f"{rest or 'HOST'}:{DEFAULT_PORT}"
        raise UsageError(
            f"server address {address!r}: drop the '{url.group(1)}://': plateforge speaks gRPC, "
            f"write HOST:PORT (here: {example})"
        )
    if text.lower().startswith(_GRPC_SCHEMES):
        return None
    host, sep, port = text.rpartition(":")
    if text.startswith("[") and "]" in text:
        inner, _, after = text[1:].partition("]")
        host, sep, port = inner, ":" if after.startswith(":") else "", after[1:]
    elif ":" in host:
        raise UsageError(
            f"server address {address!r}: write an IPv6 address in brackets, [ADDRESS]:PORT (e.g. [::1]:{DEFAULT_PORT})"
        )
    if not sep or not host:
        name = text or "HOST"
        raise UsageError(
            f"server address {address!r} has no port: write HOST:PORT (e.g. {name}:{DEFAULT_PORT}, "
            "the port `plateforge serve` uses unless given --port)"
            if not sep
            else f"server address {address!r} has no host: write HOST:PORT (e.g. 127.0.0.1{text})"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"server address {address!r}: the port must be a number from 1 to 65535, got {port!r}")
    return Endpoint(host, int(port))


def resolve(endpoint: Endpoint) -> list[tuple[socket.AddressFamily, str]]:
    """The addresses ``endpoint``'s host names, or a :class:`UsageError` when it names none. A
    lookup slower than 1.5 s returns [] so the connection attempt (with its own deadline) decides."""

    def lookup() -> list[tuple[socket.AddressFamily, str]]:
        found = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        return [(family, str(sockaddr[0])) for family, *_, sockaddr in found]

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plateforge-resolve")
    try:
        return pool.submit(lookup).result(timeout=_RESOLVE_SECONDS)
    except FutureTimeout:
        return []
    except (socket.gaierror, UnicodeError) as error:
        why = error.strerror if isinstance(error, socket.gaierror) else str(error)
        raise UsageError(
            f"server address '{endpoint}': cannot find the host {endpoint.host!r} ({why}): check the name "
            "(or use its IP address)"
        ) from None
    finally:
        pool.shutdown(wait=False)
