"""Which paths a request may make the server touch, and which names may become folders.

Requests name files on the server's machine (a training job's dataset manifest, and through it
the footage) and names that become folders (a trained model's name and version under the models
directory). A client holding the token must not be able to read or write outside what the
operator meant to share: ``--data-root`` (or ``PLATEFORGE_DATA_ROOTS``) lists the folders a
manifest and every file it lists must lie in, after symlinks are resolved; and model names and
versions are plain names, never paths. With no data root given the server trusts its callers'
paths (a workstation where the only caller is the artist); a farm server should always get one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from plateforge.errors import PathNotAllowedError, UsageError

__all__ = ["ENV_DATA_ROOTS", "check_all_inside", "check_model_name", "data_roots_from_env", "inside_roots"]

ENV_DATA_ROOTS = "PLATEFORGE_DATA_ROOTS"
#: A model name or version: what a folder name may safely be on every platform.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def data_roots_from_env() -> tuple[Path, ...]:
    """The folders in ``PLATEFORGE_DATA_ROOTS`` (separated by ``os.pathsep``)."""
    raw = os.environ.get(ENV_DATA_ROOTS, "")
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


def check_model_name(value: str, what: str) -> str:
    """``value`` if it can name a folder under the models directory; an empty value is allowed
    (the server picks the name)."""
    if value and (not _NAME.match(value) or ".." in value):
        raise UsageError(
            f"{what} {value!r} must be a plain name: letters, digits, '.', '_', '+' or '-', starting with a "
            "letter or digit, no '..', at most 128 characters"
        )
    return value


def inside_roots(path: str | Path, roots: Sequence[Path], what: str) -> Path:
    """``path`` resolved (symlinks followed), if it lies in one of ``roots``; with no roots, any."""
    resolved = Path(path).expanduser().resolve()
    if not roots:
        return resolved
    for root in roots:
        if resolved.is_relative_to(root.expanduser().resolve()):
            return resolved
    shown = ", ".join(str(r) for r in roots)
    raise PathNotAllowedError(f"{what} {path} is outside the folders this server may read ({shown})")


def check_all_inside(paths: Iterable[Path], roots: Sequence[Path], what: str) -> None:
    """Every one of ``paths`` inside ``roots``; one error naming each that is not."""
    if not roots:
        return
    outside = []
    for path in paths:
        try:
            inside_roots(path, roots, what)
        except PathNotAllowedError:
            outside.append(str(path))
    if outside:
        shown = ", ".join(str(r) for r in roots)
        raise PathNotAllowedError(f"{what} outside the folders this server may read ({shown}): {', '.join(outside)}")
