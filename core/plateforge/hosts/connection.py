"""Which server a host talks to, and a one-line status of it for a status knob.

A host keeps the address and token in its own preferences; the environment
(``PLATEFORGE_SERVER``, ``PLATEFORGE_TOKEN``, ``PLATEFORGE_TLS_CA``, as for the CLI) fills what the
preferences leave empty, which is how the farm and ``nuke -x`` are configured. :func:`check_server`
never raises for a server that is absent or refuses the token: it says so in
:attr:`ServerStatus.message`, naming the address and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from plateforge.client import ENV_SERVER, ENV_TLS_CA, ENV_TOKEN, Client, server_tls_ca
from plateforge.errors import AuthError, PlateforgeError
from plateforge.models import ModelInfo, ModelRef, select_model

__all__ = [
    "TOOL_FAMILIES",
    "ServerSettings",
    "ServerStatus",
    "check_server",
    "connect",
    "model_choices",
    "models_for",
    "resolve_settings",
]

#: Which model tools each kind of host node offers (``None``: every model).
TOOL_FAMILIES: Final[Mapping[str, tuple[str, ...] | None]] = {
    "cleanup": ("cleanup",),
    "matte": ("matte",),
    "relight": ("relight", "look"),
    "model": None,
}

Origin = Literal["preferences", "environment", "unset"]


@dataclass(frozen=True)
class ServerSettings:
    """Where the server is and how to authenticate; ``origin`` says where the address came from."""

    address: str | None
    token: str | None = None
    tls_ca: str | None = None
    origin: Origin = "unset"


def resolve_settings(
    preferences: Mapping[str, str] | None = None, *, environ: Mapping[str, str] | None = None
) -> ServerSettings:
    """Settings from the host's ``preferences`` (keys ``server``, ``token``, ``tls_ca``; empty
    values count as unset), each unset one taken from the environment."""
    prefs = {k: v.strip() for k, v in (preferences or {}).items() if isinstance(v, str) and v.strip()}
    env = os.environ if environ is None else environ
    address = prefs.get("server") or env.get(ENV_SERVER) or None
    origin: Origin = "preferences" if prefs.get("server") else ("environment" if address else "unset")
    return ServerSettings(
        address=address,
        token=prefs.get("token") or env.get(ENV_TOKEN) or None,
        tls_ca=prefs.get("tls_ca") or env.get(ENV_TLS_CA) or None,
        origin=origin,
    )


def connect(settings: ServerSettings, *, timeout: float = 300.0) -> Client:
    """A client for ``settings`` (not yet known to be reachable); the caller closes it."""
    if not settings.address:
        raise PlateforgeError(_NOT_CONFIGURED)
    ca = server_tls_ca(settings.tls_ca) if settings.tls_ca else None
    return Client(settings.address, token=settings.token, timeout=timeout, root_certificates=ca)


@dataclass(frozen=True)
class ServerStatus:
    """What a status knob shows: reachable or not, the models served, and the device."""

    address: str | None
    connected: bool
    models: tuple[ModelInfo, ...]
    #: The compute device when the server reports one (a model attribute ``device``); None otherwise.
    device: str | None
    #: One line for the user; when not connected, it says what to do.
    message: str

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


_NOT_CONFIGURED = (
    f"no plateforge server configured: set one in the plateforge preferences or {ENV_SERVER}=HOST:PORT "
    "(start one with `plateforge serve`)"
)


def check_server(settings: ServerSettings, *, timeout: float = 3.0) -> ServerStatus:
    """Ask the server for its health and models; an absent server or a refused token is a status
    with a message, not an exception."""
    if not settings.address:
        return ServerStatus(None, False, (), None, _NOT_CONFIGURED)
    address = settings.address
    try:
        client = connect(settings, timeout=timeout)
    except PlateforgeError as error:
        return ServerStatus(address, False, (), None, f"cannot connect to {address}: {error}")
    with client:
        if not client.health(timeout=timeout):
            return ServerStatus(
                address,
                False,
                (),
                None,
                f"no plateforge server answers at {address} ({settings.origin}): start one there with "
                "`plateforge serve`, or correct the address",
            )
        try:
            models = tuple(client.list_models())
        except AuthError:
            return ServerStatus(
                address,
                False,
                (),
                None,
                f"the server at {address} refused the token: set the token in the plateforge preferences or "
                f"{ENV_TOKEN}",
            )
        except PlateforgeError as error:
            return ServerStatus(address, False, (), None, f"the server at {address} failed to list models: {error}")
    devices = sorted({m.attributes["device"] for m in models if m.attributes.get("device")})
    device = ", ".join(devices) or None
    names = ", ".join(m.name for m in models) or "none"
    message = f"connected to {address}: {len(models)} model(s) ({names}); device: {device or 'not reported'}"
    return ServerStatus(address, True, models, device, message)


def models_for(models: Iterable[ModelInfo], family: str) -> list[ModelInfo]:
    """The models a node of ``family`` (a key of :data:`TOOL_FAMILIES`) offers, in server order."""
    if family not in TOOL_FAMILIES:
        raise PlateforgeError(f"unknown node family {family!r}; known: {', '.join(TOOL_FAMILIES)}")
    tools = TOOL_FAMILIES[family]
    return [m for m in models if tools is None or m.tool in tools]


def model_choices(models: Iterable[ModelInfo]) -> dict[str, ModelInfo]:
    """What a host's model picker offers, by the reference it stores and sends: ``NAME@VERSION``
    for every version served (in the order given: the menu), then each bare ``NAME`` for its
    newest version (a choice saved before versions were shown, which keeps meaning "the newest")."""
    served = list(models)
    choices = {str(ModelRef(m.name, m.version)): m for m in served}
    for name in dict.fromkeys(m.name for m in served):
        choices[name] = select_model(served, ModelRef(name))
    return choices
