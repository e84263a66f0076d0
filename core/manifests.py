"""Writing dataset manifests (``plateforge.dataset/1``) from host code: plugins, the demo, benches.

The server reads and checks manifests (``plateforge.server.datasets.manifest``, which also
registers hashes); this module only writes new ones, so code that must not import the server
(hosts, Python 3.10 without tomllib) writes them the same way. Strings are TOML basic strings
(JSON's escapes, plus DEL), so any name or path survives; files are written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plateforge import atomic

__all__ = ["MANIFEST_SCHEMA", "Source", "manifest_text", "write_manifest"]

MANIFEST_SCHEMA = "plateforge.dataset/1"


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry: a file or glob with its licence terms."""

    path: str
    licence: str
    rights_holder: str
    permitted_uses: tuple[str, ...] = ("train",)
    role: str | None = None


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string (same quotes and escapes, \uXXXX included), except
    # that TOML also forbids a raw DEL, which JSON leaves as is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def manifest_text(*, name: str, sources: Sequence[Source], description: str = "", comment: str = "") -> str:
    """The manifest's TOML text."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"schema = {_toml_string(MANIFEST_SCHEMA)}", f"name = {_toml_string(name)}"]
    if description:
        lines.append(f"description = {_toml_string(description)}")
    for source in sources:
        lines += [
            "",
            "[[sources]]",
            f"path = {_toml_string(source.path)}",
            f"licence = {_toml_string(source.licence)}",
            f"rights_holder = {_toml_string(source.rights_holder)}",
            f"permitted_uses = [{', '.join(_toml_string(u) for u in source.permitted_uses)}]",
        ]
        if source.role is not None:
            lines.append(f"role = {_toml_string(source.role)}")
    return "\n".join(lines) + "\n"


def write_manifest(
    path: str | os.PathLike[str],
    *,
    name: str,
    sources: Sequence[Source],
    description: str = "",
    comment: str = "",
) -> Path:
    """Write :func:`manifest_text` to ``path`` atomically (temp file + rename); return the path."""
    return atomic.write_text(path, manifest_text(name=name, sources=sources, description=description, comment=comment))
