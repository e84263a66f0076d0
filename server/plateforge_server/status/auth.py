"""Who may read the status page and ``/metrics``.

The status port speaks plain HTTP unless the server has TLS, so the RPC token (which can start
jobs and read footage) must not travel to it across a network:

* ``--status-token`` set: that token, and only it, opens the page and ``/metrics`` (read-only).
* no status token, the server has an RPC token: the RPC token is accepted, but only on a
  loopback status address or over TLS, where it cannot be read off the wire.
* a non-loopback status address needs ``--status-token`` or TLS (:func:`check_exposure`).
* no token at all (a loopback-only server): open, like the gRPC port itself.

A token is sent as ``Authorization: Bearer <token>`` (Prometheus ``authorization`` /
``bearer_token``), or as the password of HTTP Basic authentication (any user name), which is
what a browser asks for when the page answers 401. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from plateforge.errors import UsageError

__all__ = ["REALM", "StatusAuth", "check_exposure"]

REALM = "plateforge status"


def check_exposure(*, host: str, loopback: bool, status_token: str | None, tls: bool, rpc_token: str | None) -> None:
    """Refuse a status address others could reach without a token fit to cross the network."""
    if loopback:
        return
    if status_token:
        return
    if tls and rpc_token:
        return
    raise UsageError(
        f"refusing to serve the status page on {host} (not loopback) without --status-token: the page is "
        "plain HTTP, and the RPC token must not cross the network in clear. Give --status-token (a separate, "
        "read-only token), serve TLS (--tls-cert/--tls-key) with --token, or keep --status-host 127.0.0.1"
    )


@dataclass(frozen=True)
class StatusAuth:
    """The one token a status request must carry; None: every request is let in."""

    token: str | None

    @classmethod
    def for_server(cls, *, status_token: str | None, rpc_token: str | None, loopback: bool, tls: bool) -> StatusAuth:
        if status_token:
            return cls(status_token)
        if rpc_token and (loopback or tls):
            return cls(rpc_token)
        return cls(None)

    def allows(self, authorization: str | None) -> bool:
        """True when the ``Authorization`` header (None when absent) carries the token."""
        if self.token is None:
            return True
        given = _token_in(authorization or "")
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def _token_in(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None
