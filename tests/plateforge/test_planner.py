"""plateforge.planner: the one sequence planner behind ``process --skip-existing`` and the node cache,
on real EXR files (no server: the planner only reads the disk)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from plateforge.errors import ExrError
from plateforge.exr import sha256_file, write_exr
from plateforge.frames import Frame
from plateforge.planner import FileHashes, input_files, inputs_digest, plan_sequence
from plateforge.sequences import frame_path


def write_frames(pattern: str, numbers: list[int], value: float = 0.5) -> None:
    for number in numbers:
        pixels = np.full((4, 6), value + number / 10_000, np.float32)
        write_exr(frame_path(pattern, number), Frame.from_array(np.stack([pixels] * 3, axis=-1)))


def test_a_temporal_input_reads_the_neighbours_that_exist_and_a_single_file_for_every_frame(tmp_path: Path) -> None:
    plate = str(tmp_path / "plate.####.exr")
    write_frames(plate, [1001, 1002, 1004, 1005])  # 1003 is missing: a hole in the sequence
    still = str(tmp_path / "still.exr")
    write_frames(still, [0])
    files = input_files({"plate": plate, "mask": still}, {"plate": 2, "mask": 2}, 1002)
    assert files["plate"] == [(f, frame_path(plate, f)) for f in (1001, 1002, 1004)]
    assert files["mask"] == [(None, still)]
    # Radius 0 (or an input the radii do not name): the frame itself only.
    assert input_files({"plate": plate}, {}, 1004)["plate"] == [(1004, frame_path(plate, 1004))]


def test_a_missing_target_frame_names_the_input_the_frame_and_the_file(tmp_path: Path) -> None:
    plate = str(tmp_path / "plate.####.exr")
    write_frames(plate, [1001])
    with pytest.raises(ExrError, match=r"input 'plate' frame 1003: .*plate\.1003\.exr does not exist \(render"):
        input_files({"plate": plate}, {"plate": 1}, 1003, missing_hint=" (render the inputs)")


def test_the_inputs_digest_names_every_file_read_by_input_and_frame(tmp_path: Path) -> None:
    plate = str(tmp_path / "plate.####.exr")
    write_frames(plate, [1, 2])
    files = input_files({"plate": plate}, {"plate": 1}, 1)
    digest = inputs_digest(files, FileHashes())
    assert digest == (
        f'{{"plate": {{"1": "{sha256_file(frame_path(plate, 1))}", "2": "{sha256_file(frame_path(plate, 2))}"}}}}'
    )


def test_file_hashes_reads_each_file_once_per_plan(tmp_path: Path) -> None:
    path = str(tmp_path / "a.exr")
    write_frames(path, [0], value=0.1)
    hashes = FileHashes()
    first = hashes(path)
    write_frames(path, [0], value=0.9)  # changed on disk: a plan keeps the hash it started with
    assert hashes(path) == first != FileHashes()(path)


def test_frames_split_into_missing_current_and_made_otherwise(tmp_path: Path) -> None:
    image = str(tmp_path / "out" / "image.####.exr")
    matte = str(tmp_path / "out" / "matte.####.exr")
    (tmp_path / "out").mkdir()
    write_frames(image, [1, 2, 3, 4])
    write_frames(matte, [1, 2, 3])  # frame 4 lacks its matte: missing, whatever its record says
    asked: list[tuple[int, dict[str, str]]] = []

    def record(frame: int, paths: Mapping[str, str]) -> bool:
        asked.append((frame, dict(paths)))
        return frame != 2

    plan = plan_sequence([3, 1, 2, 4, 5, 1], outputs={"image": image, "matte": matte}, record=record)
    assert plan.frames == (3, 1, 2, 4, 5)
    assert plan.fresh == (3, 1)
    assert plan.redone == (2,)
    assert plan.send == (2, 4, 5)
    # The record is asked only about frames whose every output exists, with each output's file.
    assert [f for f, _ in asked] == [3, 1, 2]
    assert asked[0][1] == {"image": frame_path(image, 3), "matte": frame_path(matte, 3)}


def test_without_a_record_nothing_on_disk_is_trusted(tmp_path: Path) -> None:
    image = str(tmp_path / "image.####.exr")
    write_frames(image, [1, 2])
    plan = plan_sequence([1, 2, 3], outputs={"image": image}, record=None)
    assert plan.send == (1, 2, 3) and plan.fresh == () and plan.redone == ()
