"""A training job's dataset as it was checked when the job was queued; the job trains on nothing else.

A manifest is a file anyone with write access to the footage can rewrite, and a file it lists can
be replaced by another (or by a symlink to one outside the server's data roots) at any time. So a
job does not trust the manifest's path after it is queued:

1. **At submit** (:func:`take_snapshot`, quick: nothing is hashed) the manifest is read once
   through one open file (its real path checked inside the data roots, its size bounded) and its
   bytes kept; its files are resolved, checked inside the roots, and their licence terms checked.
2. **The job's first phase** (:func:`hash_footage`, cancellable) hashes every file through an
   open file whose real path is checked inside the roots again, and checks each hash the
   manifest recorded (:func:`~.manifest.register`); the hashes join the snapshot.
3. **Every run** of the job (the first, a ResumeJob, the automatic resume at start-up) first
   checks the manifest on disk still has the snapshot's bytes (:func:`check_manifest_unchanged`),
   then trains from :meth:`DatasetSnapshot.manifest`: the snapshot's text with every file's hash
   recorded, so the training code's own check (:func:`~.manifest.check_for_training`) refuses any
   file whose bytes differ from what was hashed, and any file a glob picked up since; and every
   frame is read through :func:`~.manifest.verified_path` (hashed again through one open file and
   read through that same file), so a file swapped after the check is never what is read.

Every refusal names the file (the manifest, or the footage file) and fails the job; no model is
published. The snapshot is ``<job folder>/dataset.json`` (schema ``plateforge.datasetsnapshot/1``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Final

from plateforge.errors import (
    CancelledError,
    LicenceError,
    ManifestError,
    PathNotAllowedError,
    PlateforgeError,
    UsageError,
)
from plateforge.manifest_format import (
    Manifest,
    _write_atomically,
    check_for_training,
    parse_manifest,
)
from plateforge_server.roots import check_all_inside, inside_roots

__all__ = [
    "SNAPSHOT_FILE",
    "SNAPSHOT_SCHEMA",
    "DatasetSnapshot",
    "SnapshotFile",
    "check_manifest_unchanged",
    "hash_footage",
    "read_snapshot",
    "take_snapshot",
    "write_snapshot",
]

SNAPSHOT_SCHEMA: Final = "plateforge.datasetsnapshot/1"
SNAPSHOT_FILE: Final = "dataset.json"
#: Bytes hashed between two looks at ``cancelled()``.
_CHUNK: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class SnapshotFile:
    """One file of the dataset, as the manifest named it at submit."""

    #: The file's name in the manifest's terms (what model cards and errors show).
    name: str
    #: Its absolute path, as the manifest named it (before symlinks).
    path: str
    #: The ``path`` of the source that lists it (the glob, for a glob).
    source: str
    #: The hash the manifest recorded for it; None when it recorded none.
    recorded: str | None
    #: The hash of its bytes, from the job's first phase; None until then.
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSnapshot:
    """What a job was queued with: the manifest's text and hash, its files, the roots they lie in."""

    manifest_path: str
    manifest_text: str
    manifest_sha256: str
    data_roots: tuple[str, ...]
    files: tuple[SnapshotFile, ...]

    @property
    def hashed(self) -> bool:
        """True once the first phase hashed every file."""
        return all(f.sha256 is not None for f in self.files)

    def manifest(self) -> Manifest:
        """The manifest as it was at submit, with every file's hash from the first phase recorded."""
        if not self.hashed:
            raise UsageError(f"the dataset snapshot of {self.manifest_path} has not been hashed yet")
        parsed = parse_manifest(self.manifest_text, path=Path(self.manifest_path))
        by_source: dict[str, dict[str, str]] = {}
        for item in self.files:
            assert item.sha256 is not None
            by_source.setdefault(item.source, {})[item.name] = item.sha256
        sources = tuple(replace(s, sha256=by_source.get(s.path, {})) for s in parsed.sources)
        return replace(parsed, sources=sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SNAPSHOT_SCHEMA,
            "manifest_path": self.manifest_path,
            "manifest_text": self.manifest_text,
            "manifest_sha256": self.manifest_sha256,
            "data_roots": list(self.data_roots),
            "files": [
                {"name": f.name, "path": f.path, "source": f.source, "recorded": f.recorded, "sha256": f.sha256}
                for f in self.files
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: Path) -> DatasetSnapshot:
        if not isinstance(data, dict) or data.get("schema") != SNAPSHOT_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise UsageError(
                f"{where}: dataset snapshot schema {found!r} is not one this code reads; known: {[SNAPSHOT_SCHEMA]}"
            )
        try:
            files = tuple(
                SnapshotFile(
                    name=str(f["name"]),
                    path=str(f["path"]),
                    source=str(f["source"]),
                    recorded=None if f["recorded"] is None else str(f["recorded"]),
                    sha256=None if f["sha256"] is None else str(f["sha256"]),
                )
                for f in data["files"]
            )
            return cls(
                manifest_path=str(data["manifest_path"]),
                manifest_text=str(data["manifest_text"]),
                manifest_sha256=str(data["manifest_sha256"]),
                data_roots=tuple(str(r) for r in data["data_roots"]),
                files=files,
            )
        except (KeyError, TypeError) as error:
            raise UsageError(f"{where}: not a valid dataset snapshot ({type(error).__name__}: {error})") from None


def write_snapshot(snapshot: DatasetSnapshot, job_dir: Path) -> None:
    """Write ``job_dir/dataset.json`` atomically."""
    job_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(job_dir / SNAPSHOT_FILE, json.dumps(snapshot.to_dict(), indent=1) + "\n")


def read_snapshot(job_dir: Path) -> DatasetSnapshot:
    """The snapshot saved in ``job_dir``; :class:`UsageError` naming the file when there is none."""
    where = job_dir / SNAPSHOT_FILE
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{where} does not exist: the job has no record of the dataset it was queued with; start a new job"
        ) from None
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the dataset snapshot {where}: {error}") from None
    return DatasetSnapshot.from_dict(data, where=where)


# -- reading through one open file ------------------------------------------------------------------------


def _real_path(handle: BinaryIO, path: Path) -> Path:
    """Where the open file really is: the kernel's name for it where there is one (Linux), so a
    symlink swapped after the open cannot change the answer."""
    proc = Path(f"/proc/self/fd/{handle.fileno()}")
    try:
        return Path(os.readlink(proc))
    except OSError:
        return path.resolve()


def _open_inside(path: Path, roots: Sequence[Path], what: str, error: type[PlateforgeError] = LicenceError) -> BinaryIO:
    """``path`` open for reading, if it is a regular file whose real path lies inside ``roots``;
    else ``error`` (or :class:`PathNotAllowedError`) naming it."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except FileNotFoundError:
        raise error(f"{what} '{path}' does not exist") from None
    except OSError as exc:
        raise error(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise error(f"{what} '{path}' is not a regular file")
        if roots:
            real = _real_path(handle, path)
            try:
                inside_roots(real, roots, what)
            except PathNotAllowedError:
                raise PathNotAllowedError(
                    f"{what} '{path}' is now {real}, outside the folders this server may read "
                    f"({', '.join(str(r) for r in roots)})"
                ) from None
    except BaseException:
        handle.close()
        raise
    return handle


def _manifest_bytes(path: Path, roots: Sequence[Path], max_bytes: int) -> bytes:
    with _open_inside(path, roots, "dataset manifest", ManifestError) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ManifestError(f"manifest '{path}' is larger than the {max_bytes:_} bytes a dataset manifest may be")
    return data


def take_snapshot(
    dataset: str | Path, *, data_roots: Sequence[Path] = (), max_manifest_bytes: int, max_files: int
) -> DatasetSnapshot:
    """Check a manifest for a new job, quickly (no file is hashed): inside the roots, bounded,
    valid, every file inside the roots, existing, licensed for training. The snapshot to keep."""
    path = Path(dataset).expanduser().absolute()
    roots = tuple(data_roots)
    if roots:
        inside_roots(path, roots, "dataset manifest")  # the message names the path as given
    raw = _manifest_bytes(path, roots, max_manifest_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"cannot read manifest '{path}': not UTF-8 text ({error})") from None
    manifest = parse_manifest(text, path=path)
    listed = manifest.resolve()
    if len(listed) > max_files:
        raise ManifestError(f"manifest '{path}' lists {len(listed):_} files; a dataset may have at most {max_files:_}")
    check_all_inside([f.path for f in listed], roots, "dataset files")
    files = check_for_training(manifest, hash_files=False)
    return DatasetSnapshot(
        manifest_path=str(path),
        manifest_text=text,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        data_roots=tuple(str(r) for r in roots),
        files=tuple(SnapshotFile(name=f.name, path=str(f.path), source=f.source, recorded=f.sha256) for f in files),
    )


def hash_footage(snapshot: DatasetSnapshot, *, cancelled: Callable[[], bool] = lambda: False) -> DatasetSnapshot:
    """The job's first phase: every file not yet hashed, read through an open file checked inside
    the roots, its hash checked against the one the manifest recorded. :class:`CancelledError`
    (between chunks) when ``cancelled()`` turns true; :class:`LicenceError` naming a changed file."""
    roots = tuple(Path(r) for r in snapshot.data_roots)
    done: list[SnapshotFile] = []
    for item in snapshot.files:
        if item.sha256 is None:
            digest = _hash_file(Path(item.path), roots, cancelled)
            if item.recorded is not None and digest != item.recorded:
                raise LicenceError(
                    f"'{item.name}' has changed since it was registered (sha256 {digest[:12]}…, registered "
                    f"{item.recorded[:12]}…): refusing to train on dataset {snapshot.manifest_path}"
                )
            item = replace(item, sha256=digest)
        done.append(item)
    return replace(snapshot, files=tuple(done))


def _hash_file(path: Path, roots: Sequence[Path], cancelled: Callable[[], bool]) -> str:
    digest = hashlib.sha256()
    with _open_inside(path, roots, "dataset file") as handle:
        while chunk := handle.read(_CHUNK):
            if cancelled():
                raise CancelledError(f"cancelled while hashing the footage (at '{path}')")
            digest.update(chunk)
    return digest.hexdigest()


def check_manifest_unchanged(snapshot: DatasetSnapshot, *, max_manifest_bytes: int) -> None:
    """:class:`LicenceError` naming the manifest when its bytes on disk are not the snapshot's: a
    job trains on what was checked when it was queued, or not at all."""
    path = Path(snapshot.manifest_path)
    roots = tuple(Path(r) for r in snapshot.data_roots)
    try:
        raw = _manifest_bytes(path, roots, max_manifest_bytes)
    except (LicenceError, ManifestError) as error:
        raise LicenceError(f"dataset manifest '{path}' changed since the job was queued: {error}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != snapshot.manifest_sha256:
        raise LicenceError(
            f"dataset manifest '{path}' changed since the job was queued (sha256 {digest[:12]}…, queued with "
            f"{snapshot.manifest_sha256[:12]}…); the job trains only on what was checked then: start a new job"
        )
