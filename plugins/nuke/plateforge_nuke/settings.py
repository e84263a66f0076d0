"""Server address, token and cache folder from Nuke's preferences (a plateforge tab), falling
back to the environment (see :func:`plateforge.hosts.connection.resolve_settings`)."""

from __future__ import annotations

import os

import nuke

from plateforge.hosts.connection import ServerSettings, resolve_settings
from plateforge.hosts.training import artist_name
from plateforge.paths import user_data_dir

__all__ = ["add_preference_knobs", "artist", "cache_root", "server_settings"]

#: Preference knob -> the key resolve_settings reads.
_PREFERENCES = {"pf_server": "server", "pf_token": "token", "pf_tls_ca": "tls_ca"}


def _preferences() -> nuke.Node | None:
    return nuke.toNode("preferences")


def add_preference_knobs() -> None:
    """A plateforge tab in Preferences (idempotent: knobs already there are kept with their values)."""
    prefs = _preferences()
    if prefs is None:
        return
    if prefs.knob("pf_server") is None:
        _add_server_knobs(prefs)
    # Also when the tab came back from a preferences file saved before the artist knob existed.
    _add_artist_knob(prefs)


def _add_server_knobs(prefs: nuke.Node) -> None:
    prefs.addKnob(nuke.Tab_Knob("pf_tab", "plateforge"))
    server = nuke.String_Knob("pf_server", "server")
    server.setTooltip("HOST:PORT of the plateforge server; empty: $PLATEFORGE_SERVER")
    token = nuke.String_Knob("pf_token", "token")
    token.setTooltip("bearer token; empty: $PLATEFORGE_TOKEN")
    ca = nuke.File_Knob("pf_tls_ca", "TLS CA")
    ca.setTooltip("PEM certificate to trust for a TLS server; empty: $PLATEFORGE_TLS_CA or plaintext")
    cache = nuke.File_Knob("pf_cache_root", "cache folder")
    cache.setTooltip("where nodes keep their caches when the script is not saved yet")
    for knob in (server, token, ca, cache):
        prefs.addKnob(knob)


def _add_artist_knob(prefs: nuke.Node) -> None:
    if prefs.knob("pf_artist") is not None:
        return
    artist = nuke.String_Knob("pf_artist", "artist")
    artist.setTooltip("your name or studio id, credited on the keyframes PF_Train sends; empty: $PLATEFORGE_ARTIST")
    prefs.addKnob(artist)


def _value(name: str) -> str:
    prefs = _preferences()
    knob = prefs.knob(name) if prefs is not None else None
    return str(knob.value()) if knob is not None else ""


def artist() -> str:
    """The artist PF_Train credits: the preference, else $PLATEFORGE_ARTIST, else ""."""
    return artist_name(_value("pf_artist"))


def server_settings() -> ServerSettings:
    return resolve_settings({key: _value(knob) for knob, key in _PREFERENCES.items()})


def cache_root() -> str:
    """``plateforge_cache`` beside the saved script (so the farm finds it with the script), else the
    preference, else the user's data folder."""
    script = nuke.root().name()
    if script and script != "Root":
        return os.path.join(os.path.dirname(os.path.abspath(script)), "plateforge_cache")
    return _value("pf_cache_root") or str(user_data_dir() / "nuke-cache")
