"""Files and folders that appear whole or not at all: the one way plateforge writes in place.

Every output a user or another process may read while it is written (frames, manifests, model
cards, checkpoints, job records, caches, previews, summaries) is written under a hidden
temporary name in the destination's own folder, then renamed over the destination: a reader
sees the old file or the new one, never half of one, and a crash leaves at most a hidden
``.NAME.XXXX.tmp`` beside it. The temporary name sits in the same folder so the rename never
crosses filesystems (where it would stop being atomic).

``durable=True`` also flushes the file and then its folder to disk before returning, so the new
file survives a power cut once the call returns (checkpoints, job records, published models);
without it the ordering still holds but the last write may be lost.

tests/plateforge/test_atomic.py fails if any module of the shipped packages renames a file anywhere else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "publish_folder", "replace_folder", "write_bytes", "write_text"]


def _temp_beside(target: Path, suffix: str = ".tmp") -> Path:
    # Cut long names: the hidden name adds 15 characters, and a name may have at most 255.
    return target.with_name(f".{target.name[:120]}.{secrets.token_hex(6)}{suffix}")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot open or sync a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, durable: bool = False, keep_mode: bool = False) -> Iterator[Path]:
    """A path to write the new content to; when the block ends without an error it replaces
    ``target`` in one step. On an error (or a kill) ``target`` is untouched and the temporary
    file is removed. The writer creates the file itself (``OpenEXR``, ``safetensors``,
    ``torch.save``, ``open``), so it gets the process's usual permissions; ``keep_mode`` gives it
    the replaced file's permission bits instead."""
    final = Path(target)
    temp = _temp_beside(final)
    try:
        yield temp
        if durable:
            with open(temp, "r+b") as written:
                os.fsync(written.fileno())
        if keep_mode:
            with contextlib.suppress(OSError):
                os.chmod(temp, final.stat().st_mode & 0o7777)
        os.replace(temp, final)
        if durable:
            _fsync_folder(final.parent)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def write_bytes(target: str | os.PathLike[str], data: bytes, *, durable: bool = False, keep_mode: bool = False) -> Path:
    """``data`` as the whole content of ``target``, atomically (see :func:`atomic_path`)."""
    with atomic_path(target, durable=durable, keep_mode=keep_mode) as temp, open(temp, "xb") as stream:
        stream.write(data)
    return Path(target)


def write_text(
    target: str | os.PathLike[str],
    text: str,
    *,
    durable: bool = False,
    keep_mode: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """``text`` as the whole content of ``target``, atomically (see :func:`atomic_path`)."""
    return write_bytes(target, text.encode(encoding), durable=durable, keep_mode=keep_mode)


@contextlib.contextmanager
def replace_folder(final: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh hidden folder beside ``final`` to fill; when the block succeeds it takes
    ``final``'s place (any old ``final`` is moved aside first and removed only once the new one
    is in place), on an error it is removed and ``final`` is kept as it was."""
    target = Path(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temp_beside(target, ".new")
    staging.mkdir()
    try:
        yield staging
        old = _temp_beside(target, ".old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_folder(staging: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Move the filled folder ``staging`` to ``final`` in one step, never over an existing
    ``final`` (:class:`OSError` then): a reader of ``final``'s parent sees no folder or the whole
    one. Both must be in the same folder tree on one filesystem."""
    target = Path(final)
    if target.exists():
        raise FileExistsError(errno.EEXIST, "the folder already exists", str(target))
    os.rename(staging, target)  # a non-empty target would fail too (ENOTEMPTY), never merge
    _fsync_folder(target.parent)

