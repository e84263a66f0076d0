"""Writing dataset manifests (``plateforge.dataset/1``) from host code: plugins, the demo, benches.

The server reads and checks manifests (``plateforge.manifest_format``, which also
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

__all__ = ["MANIFEST_SCHEMA", "Contributor", "Source", "contributor_toml", "manifest_text", "write_manifest"]

MANIFEST_SCHEMA = "plateforge.dataset/1"
#: Longest contributor name or role accepted (a name, a studio id, a few words of role).
MAX_CONTRIBUTOR_CHARS = 200


@dataclass(frozen=True)
class Contributor:
    """Someone whose work a source holds, besides its rights holder: an artist's name or a studio
    id, and what they did (free text: "keyframe matte", "paint fix", "grade", "plate photography")."""

    name: str
    role: str

    def __post_init__(self) -> None:
        for key in ("name", "role"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"a contributor's {key} should be non-empty text, not {value!r}")
            if len(value) > MAX_CONTRIBUTOR_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise ValueError(
                    f"a contributor's {key} should be at most {MAX_CONTRIBUTOR_CHARS} characters without control "
                    f"characters, not {value[:60]!r}"
                )

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry: a file or glob with its licence terms."""

    path: str
    licence: str
    rights_holder: str
    permitted_uses: tuple[str, ...] = ("train",)
    role: str | None = None
    #: The artists (or studio ids) whose work the files hold, with what each did.
    contributors: tuple[Contributor, ...] = ()


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string (same quotes and escapes, \uXXXX included), except
    # that TOML also forbids a raw DEL, which JSON leaves as is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def contributor_toml(contributors: Sequence[Contributor]) -> str:
    """The ``contributors = [...]`` line of a source (an array of inline tables)."""
    items = ", ".join(f"{{name = {_toml_string(c.name)}, role = {_toml_string(c.role)}}}" for c in contributors)
    return f"contributors = [{items}]"


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
        if source.contributors:
            lines.append(contributor_toml(source.contributors))
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
