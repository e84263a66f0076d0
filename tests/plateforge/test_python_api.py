"""The documented Python path: the sequence API exported from `plateforge`, which reads each
frame's neighbours as the CLI does, and `Client.process` refusing a temporal model one frame."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import plateforge
from plateforge.client import Client
from plateforge.errors import UnknownModelError, UsageError
from plateforge.exr import read_exr, sha256_file
from plateforge.metrics import psnr
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import ServerProcess

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("api-shot")
    write_shot(make_shot(width=160, height=96, frames=5, seed=8), folder)
    return folder


def test_the_sequence_api_is_public() -> None:
    for name in ("run_batch", "run_sequence", "SequenceJob", "BatchReport", "FrameFailure", "Client", "ModelRef"):
        assert name in plateforge.__all__
        assert getattr(plateforge, name).__module__.startswith("plateforge.")
    assert sorted(plateforge.__all__) == sorted(set(plateforge.__all__))
    with pytest.raises(TypeError):
        plateforge.SequenceJob("passthrough", {}, [1001], {})  # type: ignore[misc]  # keyword-only
    assert plateforge.run_batch.__doc__ and plateforge.SequenceJob.__doc__


def test_importing_plateforge_stays_cheap() -> None:
    code = "import sys, plateforge; print('grpc' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_one_frame_of_a_temporal_model_is_refused(client: Client, shot: Path) -> None:
    plate = read_exr(shot / "plate.1003.exr").replace(frame_number=1003)
    mask = read_exr(shot / "mask.1003.exr").replace(frame_number=1003)
    with pytest.raises(UsageError) as caught:
        client.process("cleanup-classical", {"plate": plate, "mask": mask})
    said = str(caught.value)
    assert "model cleanup-classical@1 reads up to 2 neighbouring frame(s) on each side" in said
    assert "plateforge.run_batch" in said and "single_frame=True" in said


def test_the_documented_example_runs_and_matches_the_cli(
    server: ServerProcess, client: Client, shot: Path, tmp_path: Path
) -> None:
    """The example in plateforge's docstring, run as written (server and folder filled in), makes
    the frames the CLI makes, and they beat the one-frame result inside the mask."""
    assert plateforge.__doc__ is not None
    example = "\n".join(
        line[4:] for line in plateforge.__doc__.split("::", 1)[1].splitlines() if line.startswith("    ")
    )
    example = example.replace('"127.0.0.1:50061"', repr(server.address)).replace(
        'token="..."', f"token={server.token!r}"
    )
    example = example.replace('"1001-1100"', '"1001-1005"')
    work = tmp_path / "work"
    work.mkdir()
    for path in shot.iterdir():
        if path.name.startswith(("plate.", "mask.")):
            (work / path.name).symlink_to(path)
    before = {p.name: sha256_file(str(p)) for p in shot.iterdir()}
    old = os.getcwd()
    os.chdir(work)
    try:
        exec(compile(example, "plateforge.__doc__", "exec"), {})
    finally:
        os.chdir(old)
    cli = subprocess.run(
        [
            sys.executable, "-m", "plateforge.cli.main", "process", "--model", "cleanup-classical",
            "--input", str(shot / "plate.####.exr"), "--mask", str(shot / "mask.####.exr"),
            "--frames", "1001-1005", "--output", str(tmp_path / "cli" / "clean.####.exr"),
        ],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PLATEFORGE_SERVER": server.address, "PLATEFORGE_TOKEN": server.token or ""},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    for number in range(1001, 1006):
        ours = read_exr(work / f"clean.{number}.exr")
        theirs = read_exr(tmp_path / "cli" / f"clean.{number}.exr")
        for name in theirs.channels:
            assert np.array_equal(ours.channels[name], theirs.channels[name]), (number, name)

    target = 1003
    plate = read_exr(shot / f"plate.{target}.exr").replace(frame_number=target)
    mask = read_exr(shot / f"mask.{target}.exr").replace(frame_number=target)
    lonely = client.process("cleanup-classical", {"plate": plate, "mask": mask}, single_frame=True)
    truth = read_exr(shot / f"clean.{target}.exr").stack(RGB)
    weight = mask.channels["A"].astype(np.float32)
    batch = psnr(read_exr(work / f"clean.{target}.exr").stack(RGB), truth, mask=weight)
    one = psnr(lonely.outputs["image"].stack(RGB), truth, mask=weight)
    assert batch > one + 3, (batch, one)
    assert {p.name: sha256_file(str(p)) for p in shot.iterdir()} == before


def test_neighbours_given_by_hand_are_the_batch_result(client: Client, shot: Path, tmp_path: Path) -> None:
    frames = range(1001, 1006)
    plates = [read_exr(shot / f"plate.{n}.exr").replace(frame_number=n) for n in frames]
    masks = [read_exr(shot / f"mask.{n}.exr").replace(frame_number=n) for n in frames]
    by_hand = client.process("cleanup-classical@1", {"plate": plates, "mask": masks}, target_frame=1003)
    report = plateforge.run_batch(
        client,
        plateforge.SequenceJob(
            model="cleanup-classical@1",
            inputs={"plate": str(shot / "plate.####.exr"), "mask": str(shot / "mask.####.exr")},
            frames=[1003],
            outputs={"image": str(tmp_path / "c.####.exr")},
        ),
    )
    assert report.status == "done" and report.model == "cleanup-classical@1"
    written = read_exr(tmp_path / "c.1003.exr")
    for name in written.channels:
        assert np.array_equal(written.channels[name], by_hand.outputs["image"].channels[name])


def test_model_references_in_the_client(client: Client, shot: Path) -> None:
    plate = read_exr(shot / "plate.1001.exr").replace(frame_number=1001)
    assert client.model_info("passthrough@1").version == "1"
    out = client.process("passthrough@1", {"plate": plate})
    assert out.provenance["plateforge/modelVersion"] == "1"
    with pytest.raises(UnknownModelError, match=re.escape("has no version '3'")):
        client.process("passthrough@3", {"plate": plate})
    with pytest.raises(UsageError, match="disagree"):
        client.process("passthrough@1", {"plate": plate}, version="2")
