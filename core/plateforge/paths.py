"""Where plateforge keeps its files on this machine. Host-safe: the standard library only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["default_models_dir", "user_data_dir"]

_APP = "plateforge"


def user_data_dir() -> Path:
    """The per-user data folder for plateforge, by the platform's convention.

    Linux and other Unix: ``$XDG_DATA_HOME/plateforge`` when that is an absolute path (the XDG
    base-directory rule ignores relative ones), else ``~/.local/share/plateforge``. macOS:
    ``~/Library/Application Support/plateforge``. Windows: ``%LOCALAPPDATA%\\plateforge``
    (``~\\AppData\\Local\\plateforge`` when it is unset).
    """
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / _APP


def default_models_dir() -> Path:
    """Where ``plateforge serve`` looks for trained models when not told: ``<user data dir>/models``."""
    return user_data_dir() / "models"


def default_jobs_dir() -> Path:
    """Where ``plateforge serve`` keeps training jobs when not told: ``<user data dir>/jobs``."""
    return user_data_dir() / "jobs"
