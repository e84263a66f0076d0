"""The dataset snapshot a training job keeps (plateforge_server/datasets/snapshot.py), in process, on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.errors import CancelledError, LicenceError, ManifestError, PathNotAllowedError
from plateforge.exr import read_exr
from plateforge.manifest_format import check_for_training, load_manifest, verified_path
from plateforge_server.datasets.snapshot import (
    check_manifest_unchanged,
    hash_footage,
    read_snapshot,
    take_snapshot,
    write_snapshot,
)
from plateforge_server.jobs._limits import LIMITS
from tests.plateforge_server.training.helpers import write_pairs

BOUNDS = {"max_manifest_bytes": LIMITS.max_manifest_bytes, "max_files": LIMITS.max_dataset_files}


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_pairs(root / "shot", frames=2, size=16, do_register=False)
    write_pairs(outside, frames=2, size=16, seed=3, do_register=False)
    return root, outside


def test_a_snapshot_round_trips_and_trains_from_what_was_hashed(roots: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = roots
    manifest = root / "shot" / "dataset.toml"
    snapshot = take_snapshot(manifest, data_roots=(root,), **BOUNDS)
    assert not snapshot.hashed and len(snapshot.files) == 4
    hashed = hash_footage(snapshot)
    write_snapshot(hashed, tmp_path / "job")
    assert read_snapshot(tmp_path / "job") == hashed
    check_manifest_unchanged(hashed, max_manifest_bytes=LIMITS.max_manifest_bytes)
    files = check_for_training(hashed.manifest())
    assert [f.name for f in files] == [f.name for f in hashed.files]
    assert all(f.sha256 == s.sha256 for f, s in zip(files, hashed.files, strict=True))

    (root / "shot" / "in" / "img.1001.exr").write_bytes(b"changed")  # after the hash phase
    with pytest.raises(LicenceError, match=r"in/img\.1001\.exr.*has changed"):
        check_for_training(hashed.manifest())
    manifest.write_text(manifest.read_text() + "\n")
    with pytest.raises(LicenceError, match="changed since the job was queued"):
        check_manifest_unchanged(hashed, max_manifest_bytes=LIMITS.max_manifest_bytes)


def test_a_file_swapped_for_a_symlink_outside_the_roots_is_refused_when_hashed(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    snapshot = take_snapshot(root / "shot" / "dataset.toml", data_roots=(root,), **BOUNDS)
    swapped = root / "shot" / "out" / "img.1002.exr"
    swapped.unlink()
    swapped.symlink_to(outside / "out" / "img.1002.exr")
    with pytest.raises(PathNotAllowedError, match=r"img\.1002\.exr.*outside the folders"):
        hash_footage(snapshot)


def test_a_recorded_hash_is_verified_in_the_hash_phase(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "shot", frames=1, size=16)  # registered: hashes recorded
    snapshot = take_snapshot(manifest, **BOUNDS)
    assert all(f.recorded for f in snapshot.files)
    (tmp_path / "shot" / "out" / "img.1001.exr").write_bytes(b"not the registered frame")
    with pytest.raises(LicenceError, match=r"out/img\.1001\.exr' has changed since it was registered"):
        hash_footage(snapshot)


def test_hashing_stops_when_cancelled(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    snapshot = take_snapshot(root / "shot" / "dataset.toml", **BOUNDS)
    with pytest.raises(CancelledError, match="hashing"):
        hash_footage(snapshot, cancelled=lambda: True)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(lambda d: d / "missing.toml", ManifestError, "does not exist", id="missing"),
        pytest.param(lambda d: d, ManifestError, "cannot be read", id="a-folder"),
        pytest.param(lambda d: Path("/dev/zero"), ManifestError, "not a regular file", id="a-device"),
        pytest.param(
            lambda d: (d / "big.toml").write_bytes(b"#" * (LIMITS.max_manifest_bytes + 1)) and d / "big.toml",
            ManifestError,
            "larger than",
            id="too-large",
        ),
        pytest.param(
            lambda d: (d / "bin.toml").write_bytes(b"\xff\xfe") and d / "bin.toml", ManifestError, "UTF-8", id="binary"
        ),
    ],
)
def test_bad_manifests_are_refused_without_hanging(tmp_path: Path, make: object, error: type, match: str) -> None:
    assert callable(make)
    with pytest.raises(error, match=match):
        take_snapshot(make(tmp_path), **BOUNDS)


def test_training_reads_the_bytes_it_hashed_through_one_open_file(roots: tuple[Path, Path]) -> None:
    """verified_path: a file swapped after the check is refused; one swapped while it is being read
    is not what is read (the open file is)."""
    root, outside = roots
    [item, *_] = check_for_training(load_manifest(root / "shot" / "dataset.toml"))
    original = read_exr(item.path)
    with verified_path(item) as path:
        item.path.unlink()
        item.path.symlink_to(outside / "in" / "img.1001.exr")  # swapped between the hash and the read
        read = read_exr(path)
        assert all(np.array_equal(read.channels[c], original.channels[c]) for c in original.channels)
        assert not np.array_equal(read_exr(item.path).channels["R"], original.channels["R"])
    with pytest.raises(LicenceError, match=r"in/img\.1001\.exr' has changed since it was checked"), verified_path(item):
        pass
