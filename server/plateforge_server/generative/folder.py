"""A base model folder and its licence record: what may be loaded, proved before it is loaded.

A generative base model is a diffusers pipeline folder (``model_index.json`` and one subfolder
per component: ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/`` …) with a
licence record beside its files: :data:`LICENCE_FILE`, a dataset manifest
(``plateforge.dataset/1``, see :mod:`plateforge.manifest_format`) whose sources list
the pipeline's files with their licence, rights holder and permitted uses, and whose
``register()`` records every file's SHA-256. :func:`write_licence` writes one for a folder and
registers it.

:func:`verify_pipeline_folder` is the only way in: before a single byte of the pipeline is
loaded it proves that

* the record exists and reads (a folder without one is refused: :class:`LicenceError`);
* every source has a licence, a rights holder, and permits the use asked for (``"infer"`` to serve
  it, ``"train"`` as well to fine-tune a LoRA on it): otherwise :class:`LicenceError`;
* every file in the folder is listed and registered, and its bytes still hash to the recorded
  SHA-256; every registered file is still there; ``model_index.json`` names only components that
  are present: otherwise :class:`ModelIntegrityError` naming the file.

It returns a :class:`VerifiedPipeline` whose ``sha256`` is the hash of the sorted list of
``(file, sha256)`` pairs: one number that names these exact weights, written into model cards
(``BaseModel.sha256``) and into every output's provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from plateforge import atomic
from plateforge.errors import LicenceError, ManifestError, ModelIntegrityError, PlateforgeError
from plateforge.exr import StrPath, sha256_file
from plateforge.manifest_format import SCHEMA, Manifest, Source, load_manifest, register, to_toml

__all__ = ["LICENCE_FILE", "VerifiedPipeline", "verify_pipeline_folder", "write_licence"]

#: The licence record of a base model folder, at its top.
LICENCE_FILE = "plateforge-licence.toml"
_INDEX = "model_index.json"


@dataclass(frozen=True)
class VerifiedPipeline:
    """A pipeline folder whose licence and every file were checked just now."""

    folder: Path
    #: The record's dataset name: the base model's name in cards and provenance.
    name: str
    #: The licence(s) of its files, joined with " AND " when they differ.
    licence: str
    rights_holder: str
    #: SHA-256 over the sorted ``"<file> <sha256>\\n"`` lines of every file (the record excluded).
    sha256: str
    #: File (relative, with "/") -> SHA-256, as verified.
    files: dict[str, str]


def write_licence(
    folder: StrPath,
    *,
    name: str,
    licence: str,
    rights_holder: str,
    permitted_uses: tuple[str, ...] = ("infer",),
    description: str = "",
) -> Path:
    """Write and register the licence record of the pipeline folder ``folder``: one source for
    ``model_index.json`` and one glob for every file of its component subfolders, all under the
    same terms, their hashes recorded. Return the record's path. A folder that is not a diffusers
    pipeline (no ``model_index.json``) is a :class:`ModelIntegrityError`."""
    root = Path(folder)
    if not (root / _INDEX).is_file():
        raise ModelIntegrityError(f"'{root}' is not a diffusers pipeline folder: it has no {_INDEX}")
    manifest = Manifest(
        path=(root / LICENCE_FILE).absolute(),
        name=name,
        description=description,
        sources=tuple(
            Source(path=path, licence=licence, rights_holder=rights_holder, permitted_uses=tuple(permitted_uses))
            for path in (_INDEX, "*/**")
        ),
        schema=SCHEMA,
        header_comments=(f"# Licence record of the base model {name}: plateforge refuses to load it without this.",),
    )
    path = root / LICENCE_FILE
    atomic.write_text(path, to_toml(manifest))  # a reader sees the old record or the new, never half of one
    register(path)  # rewrites it atomically with every file's hash
    return path


def _files(root: Path) -> list[str]:
    """Every regular, non-hidden file under ``root`` except the record, relative, sorted."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if relative.as_posix() != LICENCE_FILE:
            found.append(relative.as_posix())
    return sorted(found)


def verify_pipeline_folder(folder: StrPath, *, uses: tuple[str, ...] = ("infer",)) -> VerifiedPipeline:
    """Prove ``folder`` is a licensed, complete, unchanged pipeline (see the module docstring)
    permitted for every use in ``uses``; hash every file. Errors name the folder and file."""
    root = Path(folder).absolute()
    if not root.is_dir():
        raise ModelIntegrityError(f"base model folder '{root}' does not exist or is not a folder")
    record = root / LICENCE_FILE
    if not record.is_file():
        raise LicenceError(
            f"base model folder '{root}' has no licence record ({LICENCE_FILE}); plateforge loads no base model "
            "without one (write it with `plateforge base-model licence`)"
        )
    try:
        manifest = load_manifest(record)
        listed = manifest.resolve()
    except ManifestError as exc:
        raise LicenceError(f"base model folder '{root}': its licence record cannot be used: {exc}") from None
    terms: list[str] = []
    for source in manifest.sources:
        lacking = [use for use in uses if use not in source.permitted_uses]
        if not source.has_licence:
            terms.append(f"{source.path!r} has no licence")
        if not source.rights_holder.strip():
            terms.append(f"{source.path!r} has no rights holder")
        if lacking:
            allowed = ", ".join(source.permitted_uses) or "nothing"
            terms.append(f"{source.path!r} may not be used to {' or '.join(lacking)} (permitted uses: {allowed})")
    if terms:
        raise LicenceError(f"base model folder '{root}' ({LICENCE_FILE}): " + "; ".join(terms))
    recorded: dict[str, str] = {}
    for source in manifest.sources:
        recorded.update(source.sha256)
    on_disk = _files(root)
    problems: list[str] = []
    unregistered = [f.name for f in listed if f.sha256 is None]
    if unregistered:
        problems.append(f"file(s) {unregistered[:5]} were never registered (run register on {LICENCE_FILE})")
    unlisted = sorted(set(on_disk) - {f.name for f in listed})
    if unlisted:
        problems.append(f"file(s) {unlisted[:5]} are not in the licence record")
    missing = sorted(set(recorded) - set(on_disk))
    if missing:
        problems.append(f"registered file(s) {missing[:5]} are missing (an incomplete folder)")
    hashes: dict[str, str] = {}
    for item in listed:
        if item.sha256 is None or item.name in missing or not item.path.is_file():
            continue
        try:
            digest = sha256_file(item.path)
        except PlateforgeError as exc:
            problems.append(f"'{item.name}' cannot be read ({exc})")
            continue
        if digest != item.sha256:
            problems.append(f"'{item.name}' has sha256 {digest[:12]}…, the record says {item.sha256[:12]}… (changed)")
        hashes[item.name] = digest
    problems += _missing_components(root)
    if problems:
        raise ModelIntegrityError(f"base model folder '{root}' is refused: " + "; ".join(problems))
    digest = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(hashes.items())).encode()).hexdigest()
    licences = sorted({s.licence.strip() for s in manifest.sources})
    holders = sorted({s.rights_holder.strip() for s in manifest.sources})
    return VerifiedPipeline(
        folder=root,
        name=manifest.name,
        licence=" AND ".join(licences),
        rights_holder=", ".join(holders),
        sha256=digest,
        files=hashes,
    )


def _missing_components(root: Path) -> list[str]:
    """Components ``model_index.json`` names whose subfolder is missing or empty."""
    index = root / _INDEX
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"it has no {_INDEX} (not a diffusers pipeline)"]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"'{_INDEX}' cannot be read as JSON ({exc})"]
    if not isinstance(data, dict):
        return [f"'{_INDEX}' is not a JSON object"]
    problems = []
    for key, value in data.items():
        if key.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        part = root / key
        if not part.is_dir() or not any(p.is_file() for p in part.iterdir()):
            problems.append(f"component {key!r} named in {_INDEX} has no files (an incomplete folder)")
    return problems
