"""Every damaged EXR of the OpenEXR test set (fuzzer output) on the server's paths.

tests/plateforge/test_exr.py proves each file either reads or raises ExrError in isolation. Here they meet a
real server the two ways a farm would feed them to it: as a frame sequence through
`plateforge process --keep-going` (every frame reported with a one-line reason, no output
written for it, the server untouched), and as footage in a training dataset, which the server
reads itself (the job fails naming the file; the server keeps serving).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plateforge.client import Client
from plateforge.exr import read_exr
from plateforge.jobs_client import TrainingClient
from plateforge.manifest_format import register
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.plateforge_server.jobs.test_jobs import TINY, wait_for
from tests.plateforge_server.training.helpers import write_pairs

pytestmark = pytest.mark.timeout(150)

FIRST = 1001


@pytest.fixture(scope="module")
def sequence(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Path]]:
    """The damaged files as one sequence, dmg.1001.exr ... (links to the originals)."""
    folder = tmp_path_factory.mktemp("damaged")
    files = sorted(p for p in (testdata / "Damaged").iterdir() if p.is_file())
    frames = {}
    for k, path in enumerate(files):
        link = folder / f"dmg.{FIRST + k:04d}.exr"
        link.symlink_to(path)
        frames[FIRST + k] = path
    return folder, frames


def test_damaged_sequence_through_the_cli_and_server(
    server: ServerProcess, sequence: tuple[Path, dict[int, Path]], tmp_path: Path
) -> None:
    folder, frames = sequence
    last = max(frames)
    command = [sys.executable, "-m", "plateforge.cli.main", "process", "--server", server.address, "--token", TOKEN]
    command += ["--model", "passthrough", "--input", str(folder / "dmg.####.exr"), "--frames", f"{FIRST}-{last}"]
    command += ["--output", str(tmp_path / "out.####.exr"), "--keep-going", "--summary", "-"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=140)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    failed = {f["frame"]: f["message"] for f in summary["failed"]}
    assert {f["error"] for f in summary["failed"]} <= {"ExrError", "FrameError", "NonFiniteError"}
    processed = set(summary["processed"])
    assert processed | set(failed) == set(frames), "every frame is either processed or reported"
    assert done.returncode == (1 if failed and processed else 2 if failed else 0)
    for frame, error in failed.items():
        assert error.strip() and "\n" not in error.strip(), (frame, error)
    # Outputs: exactly one per processed frame, whole, nothing else left in the folder.
    assert sorted(os.listdir(tmp_path)) == sorted(f"out.{n:04d}.exr" for n in processed)
    for number in processed:
        assert_same_frame(read_exr(tmp_path / f"out.{number:04d}.exr"), read_exr(frames[number]), attributes=False)
    for number, error in failed.items():
        assert frames[number].name in error or f"dmg.{number:04d}.exr" in error, (number, error)
    with Client(server.address, token=TOKEN, retries=0) as client:
        assert client.health()


def test_damaged_footage_fails_the_training_job_naming_the_file(
    sequence: tuple[Path, dict[int, Path]], tmp_path: Path
) -> None:
    _, frames = sequence
    # A server of its own: should a file crash the reader, only this test's server goes.
    server = start_server("--jobs-dir", str(tmp_path / "jobs"))
    try:
        _train_on_each(server, sorted(frames.values()), tmp_path)
    finally:
        assert server.stop() == 0, "the server did not stop cleanly after the damaged footage"


def _train_on_each(server: ServerProcess, files: list[Path], tmp_path: Path) -> None:
    with Client(server.address, token=TOKEN, timeout=60) as client:
        jobs = TrainingClient(client)
        for k, damaged in enumerate(files):
            folder = tmp_path / f"set{k}"
            manifest = write_pairs(folder, frames=2, size=16, do_register=False)
            victim = folder / "in" / "img.1001.exr"
            shutil.copyfile(damaged, victim)
            register(manifest)  # licensed and hashed as it is now: only the pixels are bad
            job = jobs.start_training(dataset=str(manifest), tool="look", config=TINY)
            ended = wait_for(jobs, job.id, {"FAILED", "SUCCEEDED"}, timeout=60)
            assert ended.state == "FAILED", f"{damaged.name}: a job on damaged footage succeeded"
            assert "img.1001.exr" in ended.error and "\n" not in ended.error.strip(), (damaged.name, ended.error)
        assert client.health()
        assert client.list_models()
