from __future__ import annotations

import pytest

from plateforge.errors import UsageError
from plateforge.sequences import frame_path, has_frame_token, parse_frames


@pytest.mark.parametrize(
    ("spec", "frames"),
    [
        pytest.param("1001", [1001], id="single"),
        pytest.param("1001-1004", [1001, 1002, 1003, 1004], id="range"),
        pytest.param("1001-1007x3", [1001, 1004, 1007], id="step"),
        pytest.param("1-9:2,12", [1, 3, 5, 7, 9, 12], id="openjd-step"),
        pytest.param("1001,1005,1003-1004", [1001, 1005, 1003, 1004], id="list"),
        pytest.param("1-3,2-4", [1, 2, 3, 4], id="overlap-deduplicated"),
        pytest.param("-2-1", [-2, -1, 0, 1], id="negative"),
    ],
)
def test_parse_frames(spec: str, frames: list[int]) -> None:
    assert parse_frames(spec) == frames


@pytest.mark.parametrize("spec", ["", "a-b", "1004-1001", "1-5x0", "1-5:0", "1..5", "1001-", "1:2"])
def test_parse_frames_refuses(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_frames(spec)


@pytest.mark.parametrize(
    ("pattern", "frame", "path"),
    [
        pytest.param("plate.####.exr", 1001, "plate.1001.exr", id="hashes"),
        pytest.param("plate.#.exr", 7, "plate.7.exr", id="one-hash"),
        pytest.param("plate.######.exr", 1001, "plate.001001.exr", id="six"),
        pytest.param("plate.%04d.exr", 12, "plate.0012.exr", id="printf"),
        pytest.param("plate.%d.exr", 12, "plate.12.exr", id="printf-unpadded"),
        pytest.param("plate.####.exr", -3, "plate.-0003.exr", id="negative"),
        pytest.param("/shots/a_010/plate.####.exr", 1001, "/shots/a_010/plate.1001.exr", id="path"),
        pytest.param("still.exr", 1001, "still.exr", id="no-token"),
    ],
)
def test_frame_path(pattern: str, frame: int, path: str) -> None:
    assert frame_path(pattern, frame) == path


def test_has_frame_token() -> None:
    assert has_frame_token("a.####.exr") and has_frame_token("a.%04d.exr")
    assert not has_frame_token("a.exr")


def test_same_pattern_however_spelt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from plateforge.sequences import same_pattern

    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    base = str(tmp_path / "a" / "x.####.exr")
    assert same_pattern(base, str(tmp_path / "a" / "x.%04d.exr"))
    assert same_pattern(base, str(tmp_path / "a" / ".." / "a" / "x.####.exr"))
    assert same_pattern(base, str(tmp_path / "link" / "x.####.exr"))
    assert same_pattern(str(tmp_path / "a" / "x.#.exr"), str(tmp_path / "a" / "x.%d.exr"))
    assert not same_pattern(base, str(tmp_path / "a" / "x.###.exr"))  # other padding: other files
    assert not same_pattern(base, str(tmp_path / "a" / "y.####.exr"))
    assert not same_pattern(base, str(tmp_path / "a" / "x.1001.exr"))
