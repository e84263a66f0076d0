"""Add-on preferences (server address, token, auto-start) and the client they give."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from typing import Any

import bpy

ADDON_ID = __package__ or "plateforge"

#: The local server this Blender session started (auto-start), if any; stopped on unregister.
_local: dict[str, Any] = {}


class PlateforgePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    server: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Server",
        description="HOST:PORT of a running plateforge server (empty: $PLATEFORGE_SERVER, or auto-start)",
        default="",
    )
    token: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Token", description="The server's auth token (empty: $PLATEFORGE_TOKEN)", default="", subtype="PASSWORD"
    )
    auto_start: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Start a local server",
        description="With no server address, start the command below on 127.0.0.1 for this Blender session",
        default=False,
    )
    server_command: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Server command",
        description="How to run a server where torch is installed (Blender's Python has no torch)",
        default="plateforge serve",
    )
    timeout: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Timeout (s)", description="Seconds allowed per frame", default=300.0, min=1.0
    )
    artist: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Artist",
        description=(
            "Your name or studio id: Train nodes credit it as the contributor of the keyframes they train on "
            "(empty: $PLATEFORGE_ARTIST)"
        ),
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "server")
        layout.prop(self, "token")
        layout.prop(self, "timeout")
        layout.prop(self, "artist")
        row = layout.row()
        row.prop(self, "auto_start")
        sub = row.row()
        sub.active = self.auto_start
        sub.prop(self, "server_command", text="")
        if "server" in _local:
            layout.label(text=f"local server on {_local['server'][1]}", icon="LINKED")


def preferences(context: bpy.types.Context | None = None) -> PlateforgePreferences:
    ctx = context or bpy.context
    return ctx.preferences.addons[ADDON_ID].preferences  # type: ignore[no-any-return]


def _start_local(command: str) -> tuple[str, str]:
    from plateforge.localserver import start_ready

    token = secrets.token_urlsafe(24)
    env = {**os.environ, "PLATEFORGE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    argv = [*shlex.split(command), "--host", "127.0.0.1", "--port", "0"]
    process, address = start_ready(argv, env=env, timeout=120.0)
    _local["server"] = (process, address, token)
    return address, token


def connect(context: bpy.types.Context | None = None) -> Any:
    """A :class:`plateforge.client.Client` for the preferences' server (started if auto-start)."""
    from plateforge.client import Client, server_address, server_token
    from plateforge.errors import UsageError

    prefs = preferences(context)
    address = server_address(prefs.server or None)
    token = server_token(prefs.token or None)
    if not address and prefs.auto_start:
        if "server" in _local and _local["server"][0].poll() is None:
            address, token = _local["server"][1], _local["server"][2]
        else:
            address, token = _start_local(prefs.server_command)
    if not address:
        raise UsageError(
            "no plateforge server: set one in Preferences > Add-ons > plateforge (or $PLATEFORGE_SERVER), "
            "or turn on 'Start a local server'"
        )
    # One retry only: an artist waiting on a dead server wants the report, not a long backoff.
    return Client(address, token=token, timeout=prefs.timeout, retries=1)


def stop_local_server() -> None:
    entry = _local.pop("server", None)
    if entry is not None:
        from plateforge.localserver import stop

        process: subprocess.Popen[str] = entry[0]
        stop(process)


classes = (PlateforgePreferences,)
