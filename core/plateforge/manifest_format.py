"""Dataset manifests: what footage a model may learn from, and under which licence.

The one reader and checker of the format (plain Python, host side: the server's training and
``plateforge lineage`` both read manifests through it; :mod:`plateforge.manifests` writes them).

A manifest is a TOML file beside (or above) the footage it lists. Schema ``plateforge.dataset/1``::

    # sh010 paint-out: dailies and the artists' fixed keyframes
    schema = "plateforge.dataset/1"
    name = "sh010-cleanup"
    description = "optional free text"

    [[sources]]
    path = "plates/sh010.*.exr"                 # a file or a glob; relative to this file's folder
    licence = "LicenseRef-acme-sow-17"          # an SPDX id, or a studio licence id
    rights_holder = "ACME Pictures"
    permitted_uses = ["train", "evaluate"]      # of: train, infer, evaluate, distribute
    role = "input"                              # optional: input, target, mask, plate, clean_plate, matte
    contributors = [                            # optional: whose work the files hold, and what they did
      {name = "Ana Ruiz", role = "keyframe matte"},
      {name = "studio:4411", role = "paint fix"},
    ]

    [sources.sha256]                            # filled in by register(); for a glob, one per file
    "plates/sh010.1001.exr" = "9f86d0…"

    [[sources]]
    path = "/show/sh010/fixes/sh010_fix.1001.exr"
    licence = "LicenseRef-acme-sow-17"
    rights_holder = "ACME Pictures"
    permitted_uses = ["train"]
    role = "target"
    sha256 = "2c26b4…"                          # a single file's hash is a plain string

Rules:

* ``path`` is a file or a glob (``*``, ``?``, ``[…]``, and ``**`` for any depth), relative to the
  manifest's folder unless absolute. A glob is expanded sorted by path; hidden files never match;
  a glob that matches nothing is an error naming it. A file matched by two sources is an error.
* ``licence``, ``rights_holder`` and ``permitted_uses`` may be left out while footage is being
  collected, but :func:`check_for_training` refuses a source without them, or whose licence is the
  SPDX "NONE" or "NOASSERTION", or whose ``permitted_uses`` lack ``"train"``.
* ``sha256`` records each file's hash at :func:`register`; keyed by the file's path as written in
  the manifest's terms (relative to its folder, or absolute). Once a source is registered, training
  refuses a file whose bytes changed, a registered file that is gone, and a new file a glob has
  picked up since (register again to accept it).
* Training pairs (``role``): files are paired by frame number, the digits just before the
  extension after a ``.``, ``_`` or ``-`` (``sh010.1001.exr`` and ``sh010_fix_1001.exr`` are frame
  1001). :func:`pairs` groups an input file with the target (and optional mask …) of the same frame.
* ``contributors`` (optional) credits the artists (a name or a studio id) whose work a source
  holds, besides its rights holder, each with a ``role`` in free text ("keyframe matte", "paint
  fix", "grade", "plate photography"). They are carried to the model card and the lineage index
  (``plateforge lineage credits``); they grant nothing (the licence does).
* Unknown keys, schemas, uses and roles are refused with the list of known ones.

:func:`register` rewrites the manifest with the hashes filled in (atomically). It keeps the
comment lines at the top of the file; other comments are not kept.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# The manifest is TOML: Python 3.11+'s tomllib (the server, and `plateforge lineage`). A host on
# Python 3.10 (Nuke 15) imports this module for its names but cannot read a manifest: it says so.
try:
    import tomllib  # type: ignore[import-not-found,unused-ignore]
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    tomllib = None

from plateforge import atomic
from plateforge.errors import ExrError, LicenceError, ManifestError
from plateforge.exr import StrPath, sha256_file
from plateforge.manifests import Contributor

__all__ = [
    "KNOWN_SCHEMAS",
    "NO_LICENCE",
    "ROLES",
    "SCHEMA",
    "USES",
    "Contributor",
    "Manifest",
    "Pair",
    "Source",
    "SourceFile",
    "check_for_training",
    "frame_number",
    "load_manifest",
    "pairs",
    "parse_manifest",
    "register",
    "to_toml",
    "verified_path",
]

#: The schema this version writes.
SCHEMA = "plateforge.dataset/1"
#: Schemas this version reads; anything else is refused with this list.
KNOWN_SCHEMAS = (SCHEMA,)
#: What a source may be used for.
USES = ("train", "infer", "evaluate", "distribute")
#: What a source is to a tool being trained.
ROLES = ("input", "target", "mask", "plate", "clean_plate", "matte")
#: Licence values that mean "no licence" (SPDX's own words for it), besides an empty one.
NO_LICENCE = ("NONE", "NOASSERTION")

_TOP_KEYS = ("schema", "name", "description", "sources")
_SOURCE_KEYS = ("path", "licence", "rights_holder", "permitted_uses", "role", "contributors", "sha256")
_CONTRIBUTOR_KEYS = ("name", "role")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FRAME = re.compile(r"[._-](\d+)\.[^.]+$")
_GLOB_CHARS = re.compile(r"[*?\[]")
#: At most this many offending files are named in one LicenceError; the rest are counted.
_MAX_LISTED = 50


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry, as written."""

    #: A file or a glob, relative to the manifest's folder unless absolute.
    path: str
    licence: str = ""
    rights_holder: str = ""
    permitted_uses: tuple[str, ...] = ()
    role: str | None = None
    #: Recorded hashes: file name (in the manifest's terms) -> SHA-256 hex digest.
    sha256: Mapping[str, str] = field(default_factory=dict)
    #: Whose work the files hold, besides the rights holder.
    contributors: tuple[Contributor, ...] = ()

    @property
    def is_glob(self) -> bool:
        return _GLOB_CHARS.search(self.path) is not None

    @property
    def has_licence(self) -> bool:
        return bool(self.licence.strip()) and self.licence.strip().upper() not in NO_LICENCE


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset, with the terms of the source that lists it."""

    #: Absolute path of the file.
    path: Path
    #: The file's name in the manifest's terms: relative to its folder (with "/"), or absolute.
    name: str
    #: The ``path`` of the source that lists it (the glob, for a glob).
    source: str
    licence: str
    rights_holder: str
    permitted_uses: tuple[str, ...]
    role: str | None
    #: The recorded hash (from :meth:`Manifest.resolve`) or the verified one (from
    #: :func:`check_for_training`); None when the file was never registered.
    sha256: str | None
    #: Frame number from the file name (see :func:`frame_number`), or None.
    frame: int | None
    #: Whose work the file holds (the source's ``contributors``).
    contributors: tuple[Contributor, ...] = ()


@dataclass(frozen=True)
class Pair:
    """Files of the same frame, by role (e.g. ``{"input": …, "target": …}``)."""

    frame: int
    files: Mapping[str, SourceFile]


@dataclass(frozen=True)
class Manifest:
    """A dataset manifest, as loaded from ``path``."""

    #: The manifest file (absolute).
    path: Path
    name: str
    sources: tuple[Source, ...]
    description: str = ""
    schema: str = SCHEMA
    #: Comment lines at the top of the file, kept when :func:`register` rewrites it.
    header_comments: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self) -> list[SourceFile]:
        """Every file the manifest lists, sources in order, each glob sorted by path, with the
        recorded hashes. A glob that matches nothing, or a file listed twice, is a
        :class:`ManifestError`. A plain path is listed whether or not the file exists."""
        files: list[SourceFile] = []
        for source in self.sources:
            matched = _expand(self, source)
            if not matched:
                raise ManifestError(f"{_where(self)}: source {source.path!r} matches no file")
            files.extend(_source_file(self, source, path) for path in matched)
        _refuse_duplicates(self, files)
        return files


# -- loading --------------------------------------------------------------------------------


def _where(manifest: Manifest | Path) -> str:
    path = manifest.path if isinstance(manifest, Manifest) else manifest
    return f"manifest '{path}'"


def _text(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {key!r} should be text, not {value!r}")
    return value


def _unknown_keys(where: str, table: Mapping[str, object], known: Sequence[str]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(known)}")


def _hash(where: str, value: object) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ManifestError(f"{where}: {value!r} is not a SHA-256 hex digest (64 lowercase hex digits)")
    return value


def _contributors(where: str, value: object) -> tuple[Contributor, ...]:
    if not isinstance(value, list):
        raise ManifestError(
            f"{where}: 'contributors' should be a list of {{name = ..., role = ...}} tables, not {value!r}"
        )
    found: list[Contributor] = []
    for index, item in enumerate(value):
        here = f"{where}, contributors[{index}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{here}: each contributor should be a table {{name = ..., role = ...}}, not {item!r}")
        _unknown_keys(here, item, _CONTRIBUTOR_KEYS)
        missing = [k for k in _CONTRIBUTOR_KEYS if k not in item]
        if missing:
            raise ManifestError(f"{here}: the contributor has no {' or '.join(repr(k) for k in missing)}")
        try:
            found.append(Contributor(name=item["name"], role=item["role"]))
        except ValueError as exc:
            raise ManifestError(f"{here}: {exc}") from None
    return tuple(dict.fromkeys(found))


def _parse_source(manifest: Path, index: int, table: object) -> Source:
    where = f"{_where(manifest)}, sources[{index}]"
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: each source should be a table ([[sources]])")
    if "path" not in table:
        raise ManifestError(f"{where}: the source has no 'path'")
    path = _text(where, "path", table["path"])
    if not path.strip():
        raise ManifestError(f"{where}: 'path' is empty")
    where = f"{_where(manifest)}, source {path!r}"
    _unknown_keys(where, table, _SOURCE_KEYS)
    uses = table.get("permitted_uses", [])
    if not isinstance(uses, list) or not all(isinstance(u, str) for u in uses):
        raise ManifestError(f"{where}: 'permitted_uses' should be a list of text, not {uses!r}")
    unknown_uses = sorted(set(uses) - set(USES))
    if unknown_uses:
        raise ManifestError(f"{where}: unknown permitted use(s) {unknown_uses}; known uses: {', '.join(USES)}")
    role = table.get("role")
    if role is not None and role not in ROLES:
        raise ManifestError(f"{where}: unknown role {role!r}; known roles: {', '.join(ROLES)}")
    source = Source(
        path=path,
        licence=_text(where, "licence", table.get("licence", "")).strip(),
        rights_holder=_text(where, "rights_holder", table.get("rights_holder", "")).strip(),
        permitted_uses=tuple(dict.fromkeys(uses)),
        role=role,
        contributors=_contributors(where, table.get("contributors", [])),
    )
    recorded = table.get("sha256")
    hashes: dict[str, str] = {}
    if source.is_glob:
        if recorded is not None and not isinstance(recorded, dict):
            raise ManifestError(f"{where}: a glob's 'sha256' should be a table of file -> hash, not {recorded!r}")
        for name, digest in (recorded or {}).items():
            hashes[name] = _hash(f"{where}, sha256 of {name!r}", digest)
    elif recorded is not None:
        if not isinstance(recorded, str):
            raise ManifestError(f"{where}: a file's 'sha256' should be one hash (text), not {recorded!r}")
        hashes[_name(manifest.parent, _absolute(manifest.parent, path))] = _hash(f"{where}, sha256", recorded)
    return replace(source, sha256=hashes)


def _header_comments(text: str) -> tuple[str, ...]:
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip().startswith("#"):
            break
        lines.append(line.rstrip())
    return tuple(lines)


def load_manifest(path: StrPath | Manifest) -> Manifest:
    """Read and check a manifest; :class:`ManifestError` naming it on any problem. A
    :class:`Manifest` is returned as it is (a job's snapshot, :mod:`.snapshot`), so training code
    takes either a path or the manifest a job checked when it was queued."""
    if isinstance(path, Manifest):
        return path
    where_path = Path(os.path.abspath(path))
    where = _where(where_path)
    try:
        text = where_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {where}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_manifest(text, path=where_path)


def parse_manifest(text: str, *, path: Path) -> Manifest:
    """The manifest ``text`` read from ``path`` (an absolute path: relative sources are relative
    to its folder); :class:`ManifestError` naming ``path`` on any problem."""
    where_path = path
    where = _where(where_path)
    if tomllib is None:
        raise ManifestError(f"cannot read {where}: reading a dataset manifest (TOML) needs Python 3.11 or later")
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{where} is not valid TOML: {exc}") from None
    if data.get("schema") not in KNOWN_SCHEMAS:
        said = f"unknown schema {data['schema']!r}" if "schema" in data else "no 'schema' key"
        raise ManifestError(f"{where} has {said}; known schemas: {', '.join(KNOWN_SCHEMAS)}")
    _unknown_keys(where, data, _TOP_KEYS)
    name = _text(where, "name", data.get("name", "")).strip()
    if not name:
        raise ManifestError(f"{where}: the dataset has no 'name'")
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ManifestError(f"{where} lists no sources (add [[sources]] tables)")
    return Manifest(
        path=where_path,
        name=name,
        description=_text(where, "description", data.get("description", "")),
        sources=tuple(_parse_source(where_path, i, t) for i, t in enumerate(raw_sources)),
        schema=data["schema"],
        header_comments=_header_comments(text),
    )


# -- resolving ------------------------------------------------------------------------------


def frame_number(path: StrPath) -> int | None:
    """The frame number in a file name: the digits just before the extension, after ``.``,
    ``_`` or ``-`` (``sh010.1001.exr`` -> 1001); None when there are none."""
    found = _FRAME.search(Path(path).name)
    return int(found.group(1)) if found else None


def _absolute(folder: Path, path: str) -> Path:
    return Path(os.path.normpath(folder / path))


def _name(folder: Path, path: Path) -> str:
    """A file's name in the manifest's terms: relative to its folder when inside it."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _expand(manifest: Manifest, source: Source) -> list[Path]:
    """The files of a source: a plain path as is (existing or not), a glob's regular files."""
    pattern = _absolute(manifest.folder, source.path)
    if not source.is_glob:
        return [pattern]
    found = (Path(p) for p in glob.glob(str(pattern), recursive=True))
    return sorted((p for p in found if p.is_file()), key=lambda p: p.as_posix())


def _source_file(manifest: Manifest, source: Source, path: Path) -> SourceFile:
    name = _name(manifest.folder, path)
    return SourceFile(
        path=path,
        name=name,
        source=source.path,
        licence=source.licence,
        rights_holder=source.rights_holder,
        permitted_uses=source.permitted_uses,
        role=source.role,
        sha256=source.sha256.get(name),
        frame=frame_number(path),
        contributors=source.contributors,
    )


def _refuse_duplicates(manifest: Manifest, files: Iterable[SourceFile]) -> None:
    seen: dict[Path, SourceFile] = {}
    for item in files:
        first = seen.setdefault(item.path, item)
        if first is not item:
            raise ManifestError(
                f"{_where(manifest)}: '{item.name}' is listed by two sources ({first.source!r} and {item.source!r}); "
                "each file must have one set of terms"
            )


def pairs(
    files: Sequence[SourceFile], *, roles: Sequence[str] = ("input", "target"), optional: Sequence[str] = ()
) -> list[Pair]:
    """Group files by frame number into training pairs, sorted by frame: each pair has one file
    of every role in ``roles`` and of those in ``optional`` that exist for that frame. Files of
    other roles are ignored. A file of a wanted role with no frame number, two files of one role
    for one frame, or a frame that lacks a required role are :class:`ManifestError` naming the file."""
    unknown = sorted((set(roles) | set(optional)) - set(ROLES))
    if unknown:
        raise ManifestError(f"unknown role(s) {unknown}; known roles: {', '.join(ROLES)}")
    frames: dict[int, dict[str, SourceFile]] = {}
    for item in files:
        role = item.role
        if role is None or (role not in roles and role not in optional):
            continue
        if item.frame is None:
            raise ManifestError(f"'{item.name}' ({role}) has no frame number in its name to pair it by")
        by_role = frames.setdefault(item.frame, {})
        if role in by_role:
            raise ManifestError(f"'{by_role[role].name}' and '{item.name}' are both the {role} of frame {item.frame}")
        by_role[role] = item
    out: list[Pair] = []
    for number in sorted(frames):
        by_role = frames[number]
        lacking = [r for r in roles if r not in by_role]
        if lacking:
            have = ", ".join(f"'{f.name}'" for f in by_role.values())
            raise ManifestError(f"{have} (frame {number}) has no {' or '.join(lacking)} to pair with")
        out.append(Pair(frame=number, files=dict(by_role)))
    return out


# -- registering ----------------------------------------------------------------------------


def _sha256(path: Path) -> str | None:
    """The file's hash, or None when it cannot be read (the caller says why)."""
    try:
        return sha256_file(path)
    except ExrError:
        return None


def register(path: StrPath) -> Manifest:
    """Hash every file the manifest lists and write the hashes into it, atomically; return the
    manifest as now written. Hashes recorded before are replaced (registering again accepts the
    files as they are now). A missing or unreadable file is a :class:`ManifestError` naming it."""
    manifest = load_manifest(path)
    files = manifest.resolve()
    problems: list[str] = []
    hashes: dict[str, dict[str, str]] = {s.path: {} for s in manifest.sources}
    for item in files:
        digest = _sha256(item.path) if item.path.is_file() else None
        if digest is None:
            reason = "does not exist" if not item.path.exists() else "cannot be read as a file"
            problems.append(f"'{item.name}' {reason}")
            continue
        hashes[item.source][item.name] = digest
    if problems:
        raise ManifestError(f"cannot register {_where(manifest)}: {'; '.join(problems)}")
    updated = replace(manifest, sources=tuple(replace(s, sha256=hashes[s.path]) for s in manifest.sources))
    _write_atomically(manifest.path, to_toml(updated))
    return load_manifest(manifest.path)


def _write_atomically(path: Path, text: str) -> None:
    try:
        atomic.write_text(path, text, durable=True, keep_mode=True)
    except OSError as exc:
        raise ManifestError(f"cannot write {_where(path)}: {exc.strerror or exc}") from exc


# -- checking for training ------------------------------------------------------------------


def _grouped(problems: Sequence[tuple[str, str]]) -> str:
    """Files with the same reason in one clause, so a glob of 200 unlicensed frames reads as one
    sentence naming each file once; at most ``_MAX_LISTED`` names in all, the rest counted."""
    by_reason: dict[str, list[str]] = {}
    for name, why in problems:
        by_reason.setdefault(why, []).append(name)
    clauses: list[str] = []
    budget = _MAX_LISTED
    for why, names in by_reason.items():
        shown = names[: max(budget, 1)]
        budget -= len(shown)
        rest = f", and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        if len(names) == 1:
            clauses.append(f"{names[0]} {why}")
        else:
            clauses.append(f"{len(names)} files ({', '.join(shown)}{rest}) each {why}")
    return "; ".join(clauses)


def check_for_training(manifest: Manifest, *, hash_files: bool = True) -> list[SourceFile]:
    """The files of ``manifest`` that a model may be trained on, each with its verified SHA-256,
    or one :class:`LicenceError` naming every file that may not be used and why: no licence, no
    rights holder, permitted uses without "train", missing, unreadable, changed since it was
    registered, or not registered where its source was.

    With ``hash_files`` False nothing is hashed (a quick check of the terms, for a call that must
    answer at once): files must exist as regular files, and carry their recorded hash, or None."""
    #: (what, why) for every file (or glob) that may not be used, in manifest order.
    problems: list[tuple[str, str]] = []
    files: list[SourceFile] = []
    expanded = [(source, _expand(manifest, source)) for source in manifest.sources]
    _refuse_duplicates(manifest, [_source_file(manifest, s, p) for s, matched in expanded for p in matched])
    for source, matched in expanded:
        if not matched and not source.sha256:
            problems.append((repr(source.path), "matches no file"))
        terms: list[str] = []
        if not source.has_licence:
            terms.append(f"has no licence ({source.licence!r})" if source.licence else "has no licence")
        if not source.rights_holder:
            terms.append("has no rights holder")
        if "train" not in source.permitted_uses:
            allowed = ", ".join(source.permitted_uses) or "nothing"
            terms.append(f"may not be used for training (permitted uses: {allowed})")
        names: set[str] = set()
        for path in matched:
            item = _source_file(manifest, source, path)
            names.add(item.name)
            reasons = list(terms)
            if not hash_files:
                digest = (item.sha256 or "") if path.is_file() else None
            else:
                digest = _sha256(path) if path.is_file() else None
            if digest is None:
                reasons.append("does not exist" if not path.exists() else "cannot be read as a file")
            elif item.sha256 is not None and digest != item.sha256:
                reasons.append(
                    f"has changed since it was registered (sha256 {digest[:12]}…, registered {item.sha256[:12]}…)"
                )
            elif item.sha256 is None and source.sha256:
                reasons.append(f"was not registered with the other files of {source.path!r} (register again)")
            if reasons:
                problems.append((f"'{item.name}'", " and ".join(reasons)))
            else:
                files.append(replace(item, sha256=digest or None))
        for gone in sorted(set(source.sha256) - names):
            problems.append((f"'{gone}'", "was registered but does not exist any more"))
    if problems:
        raise LicenceError(
            f"refusing to train on dataset {manifest.name!r} ({_where(manifest)}): {len(problems)} problem(s): "
            + _grouped(problems)
        )
    return files


@contextlib.contextmanager
def verified_path(item: SourceFile) -> Iterator[str]:
    """A path to read ``item`` from that names the very file whose bytes were just hashed and
    match ``item.sha256``: the file is opened once, hashed through that open file, and read
    through it (``/proc/self/fd/N`` on Linux), so a symlink or a file swapped in after the hash
    is never what is read. :class:`LicenceError` naming the file when its bytes differ. An item
    with no hash (never checked) is read by its path."""
    if item.sha256 is None:
        yield str(item.path)
        return
    try:
        handle = open(item.path, "rb")  # noqa: SIM115 - held open while the caller reads through it
    except OSError as exc:
        raise LicenceError(f"'{item.name}' cannot be read any more: {exc.strerror or exc}") from None
    with handle:
        digest = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
        if digest.hexdigest() != item.sha256:
            raise LicenceError(
                f"'{item.name}' has changed since it was checked (sha256 {digest.hexdigest()[:12]}…, checked "
                f"{item.sha256[:12]}…)"
            )
        through = Path(f"/proc/self/fd/{handle.fileno()}")
        yield str(through) if through.exists() else str(item.path)


# -- writing TOML ---------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__} {value!r}")


def to_toml(manifest: Manifest) -> str:
    """The manifest as TOML text that :func:`load_manifest` reads back to an equal manifest
    (the top comment lines included; other comments are not kept)."""
    lines = [*manifest.header_comments]
    lines.append(f"schema = {_toml_value(manifest.schema)}")
    lines.append(f"name = {_toml_value(manifest.name)}")
    if manifest.description:
        lines.append(f"description = {_toml_value(manifest.description)}")
    for source in manifest.sources:
        lines += ["", "[[sources]]", f"path = {_toml_value(source.path)}"]
        lines.append(f"licence = {_toml_value(source.licence)}")
        lines.append(f"rights_holder = {_toml_value(source.rights_holder)}")
        lines.append(f"permitted_uses = {_toml_value(list(source.permitted_uses))}")
        if source.role is not None:
            lines.append(f"role = {_toml_value(source.role)}")
        if source.contributors:
            people = ", ".join(
                f"{{name = {_toml_value(c.name)}, role = {_toml_value(c.role)}}}" for c in source.contributors
            )
            lines.append(f"contributors = [{people}]")
        if source.sha256 and not source.is_glob:
            lines.append(f"sha256 = {_toml_value(next(iter(source.sha256.values())))}")
        elif source.sha256:
            lines += ["", "[sources.sha256]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(source.sha256.items())]
    return "\n".join(lines) + "\n"
