"""Live progress of the long commands: on a terminal (a real pseudo-terminal) a bar redrawn in
place with rate and ETA; on a pipe plain one-line events, no carriage return; --quiet: none.
`process` and `train` run as real processes against a real server."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from plateforge.cli.progress import Progress
from plateforge.exr import write_exr
from plateforge.frames import Frame
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.plateforge_server.training.helpers import write_pairs

FRAMES = 12
TRAIN_STEPS = 60
TRAIN_FAST = ["--param", "batch=1", "--param", "crop=16", "--param", "validation_size=32", "--param", "warmup=1"]
BAR = re.compile(r"\[[#-]{24}\]")


def _env(server: ServerProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env.update(PLATEFORGE_SERVER=server.address, PLATEFORGE_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    return env


def on_a_pipe(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "plateforge.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


def on_a_terminal(args: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit code and what the command wrote to its terminal (stdout and stderr both on the pty)."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "plateforge.cli.main", *args]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            process.kill()
            raise AssertionError("the command wrote nothing for 300 s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    jobs = tempfile.mkdtemp(prefix="plateforge-progress-jobs-")
    started = start_server("--jobs-dir", jobs, "--models-dir", str(Path(jobs) / "models"), "--threads", "1")
    yield started
    assert started.stop() == 0


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("plates")
    rng = np.random.default_rng(5)
    for number in range(1001, 1001 + FRAMES):
        image = rng.random((24, 32, 3), dtype=np.float32)
        write_exr(folder / f"plate.{number}.exr", Frame.from_array(image, names=("R", "G", "B")))
    return str(folder / "plate.####.exr")


def _process(plates: str, out: Path, *more: str) -> list[str]:
    return ["process", "--model", "passthrough", "--input", plates, "--frames", f"1001-{1000 + FRAMES}",
            "--output", str(out / "out.####.exr"), *more]  # fmt: skip


def test_process_on_a_terminal_draws_a_bar_with_rate_and_eta(
    server: ServerProcess, plates: str, tmp_path: Path
) -> None:
    code, screen = on_a_terminal(_process(plates, tmp_path), _env(server))
    assert code == 0, screen
    redraws = screen.split("\r")
    bars = [r for r in redraws if r.startswith("passthrough [")]
    assert len(bars) == FRAMES, screen  # one redraw per frame, in place
    assert BAR.search(bars[-1]) and f"{FRAMES}/{FRAMES} 100%" in bars[-1]
    assert all(re.search(r"\d+\.\d\d fr/s  eta (--|\d+m\d\ds)", b) for b in bars), bars
    assert "[" + "#" * 24 + "]" in bars[-1]


def test_process_on_a_pipe_prints_plain_lines_and_quiet_prints_none(
    server: ServerProcess, plates: str, tmp_path: Path
) -> None:
    result = on_a_pipe(_process(plates, tmp_path / "a"), _env(server))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not BAR.search(result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("passthrough ")]
    assert [line.split()[1] for line in lines] == ["1/12", "10/12", "12/12"], result.stderr
    assert all(re.search(r"fr/s  eta (--|\d+m\d\ds)  frame 10\d\d$", line) for line in lines), lines

    quiet = on_a_pipe(_process(plates, tmp_path / "b", "--quiet"), _env(server))
    assert quiet.returncode == 0, quiet.stderr
    # The result still says what was written; no progress, no "starting" notice.
    assert [line.split(":")[0] for line in quiet.stderr.splitlines()] == ["wrote 12 file(s)"], quiet.stderr
    assert len(list((tmp_path / "b").glob("out.*.exr"))) == FRAMES


def _train(manifest: Path, *more: str) -> list[str]:
    return ["train", "--dataset", str(manifest), "--tool", "look", "--steps", str(TRAIN_STEPS), *TRAIN_FAST, *more]


def test_train_on_a_terminal_and_on_a_pipe(server: ServerProcess, tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    code, screen = on_a_terminal(_train(manifest, "--name", "progress-tty"), _env(server))
    assert code == 0, screen
    bars = [r for r in screen.split("\r") if re.match(r"train \w+ step \[", r)]
    assert len(bars) >= TRAIN_STEPS // 2, screen
    assert f"{TRAIN_STEPS}/{TRAIN_STEPS} 100%" in bars[-1] and "steps/s" in bars[-1] and "loss " in bars[-1]
    assert "loss.png, preview.png" in screen  # where the pictures are

    result = on_a_pipe(_train(manifest, "--name", "progress-pipe"), _env(server))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not BAR.search(result.stderr)
    steps = [line.split()[3] for line in result.stderr.splitlines() if re.match(r"train \w+ step \d", line)]
    assert steps[-2:] == ["50/60", "60/60"] and set(steps) <= {"1/60", "50/60", "60/60"}, result.stderr
    assert "succeeded" in result.stderr and "/progress-pipe/step" in result.stdout

    quiet = on_a_pipe(_train(manifest, "--name", "progress-quiet", "--quiet"), _env(server))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.strip()  # the model folder, nothing else


def test_progress_modes() -> None:
    tty, pipe, quiet = io.StringIO(), io.StringIO(), io.StringIO()
    for stream, is_tty, silent in ((tty, True, False), (pipe, False, False), (quiet, False, True)):
        progress = Progress("job", unit="steps", stream=stream, quiet=silent, every=5, tty=is_tty)
        progress.update(3, 12)  # a resumed run starts mid-way
        for done in range(4, 13):
            progress.update(done, 12, f"loss {done}")
            if done == 6:
                progress.event("a state change")
    assert tty.getvalue().count("\r") == 10 and tty.getvalue().endswith("loss 12\x1b[K\n")
    assert "\nstate" not in tty.getvalue() and "\na state change\n" in tty.getvalue()
    lines = [line.split()[1] for line in pipe.getvalue().splitlines() if line.startswith("job ")]
    assert lines == ["5/12", "10/12", "12/12"]
    assert "a state change" in pipe.getvalue() and "\r" not in pipe.getvalue()
    assert quiet.getvalue() == ""
