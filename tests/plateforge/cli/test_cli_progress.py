"""Live progress of the long commands: on a terminal (a real pseudo-terminal) a bar redrawn in
place with rate and ETA; on a pipe plain one-line events, no carriage return; --quiet: none.
`process`, `train`, `export` and `lineage index` run as real processes (against a real server
where they need one)."""

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
from tests.plateforge_server.export.helpers import allow
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


def test_job_watch_on_a_terminal_and_on_a_pipe(server: ServerProcess, tmp_path: Path) -> None:
    """Three watchers of one job at once: a terminal, a pipe, and a pipe with --quiet."""
    from plateforge.client import Client
    from plateforge.jobs_client import TrainingClient

    steps = 400
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    params: dict[str, int | str] = {"steps": steps, "batch": 1, "crop": 16, "validation_size": 32, "warmup": 1}
    with Client(server.address, token=TOKEN) as client:
        job = TrainingClient(client).start_training(dataset=str(manifest), tool="look", params=params)
    command = [sys.executable, "-m", "plateforge.cli.main", "job", "watch", job.id]
    pipes = [
        subprocess.Popen([*command, *more], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(server))
        for more in ((), ("--quiet",))
    ]
    code, screen = on_a_terminal(["job", "watch", job.id], _env(server))
    (out, err), (quiet_out, quiet_err) = (p.communicate(timeout=300) for p in pipes)
    assert code == 0 and [p.returncode for p in pipes] == [0, 0], (screen, err, quiet_err)

    bars = [r for r in screen.split("\r") if r.startswith(f"train {job.id} step [")]
    assert len(bars) >= 10 and BAR.search(bars[-1]), screen  # joined mid-way, redrawn in place from then
    assert f"{steps}/{steps} 100%" in bars[-1] and re.search(r"steps/s  eta (--|\d+m\d\ds)  loss ", bars[-1])
    assert "succeeded" in screen

    assert "\r" not in err and not BAR.search(err)
    seen = [line.split()[3] for line in err.splitlines() if line.startswith(f"train {job.id} step ")]
    assert seen[-1] == f"{steps}/{steps}" and {int(s.split("/")[0]) % 50 for s in seen[1:-1]} <= {0}, err
    assert f"job {job.id} succeeded" in err
    assert quiet_err == "" and quiet_out == out == "", (quiet_err, quiet_out, out)


def test_demo_on_a_terminal_and_on_a_pipe(server: ServerProcess, tmp_path: Path) -> None:
    def demo(out: str, *more: str) -> list[str]:
        return ["demo", "--out", str(tmp_path / out), "--frames", str(FRAMES), *more]

    code, screen = on_a_terminal(demo("tty"), _env(server))
    assert code == 0, screen
    bars = [r for r in screen.split("\r") if r.startswith("cleanup-classical [")]
    assert len(bars) == FRAMES and BAR.search(bars[-1]), screen
    assert f"{FRAMES}/{FRAMES} 100%" in bars[-1] and re.search(r"fr/s  eta (--|\d+m\d\ds)  frame 10\d\d", bars[-1])

    result = on_a_pipe(demo("pipe"), _env(server))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not BAR.search(result.stderr)
    lines = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("cleanup-classical ")]
    assert lines == ["1/12", "10/12", "12/12"], result.stderr

    quiet = on_a_pipe(demo("quiet", "--quiet"), _env(server))
    assert quiet.returncode == 0, quiet.stderr
    assert [line.split(":")[0] for line in quiet.stderr.splitlines()] == ["wrote 12 cleaned frames"], quiet.stderr


def test_export_on_a_terminal_and_on_a_pipe(server: ServerProcess, tmp_path: Path) -> None:
    manifest = allow(write_pairs(tmp_path / "data", frames=2, size=32, do_register=False), "train", "distribute")
    trained = on_a_pipe([*_train(manifest, "--name", "progress-export", "--quiet"), "--steps", "3"], _env(server))
    assert trained.returncode == 0, trained.stderr
    files = ["progress-export.pt", "card.json", "catfilecreator.json", "README.md"]

    def export(out: Path, *more: str) -> list[str]:
        return ["export", "progress-export", "--format", "nuke", "--output", str(out), *more]

    code, screen = on_a_terminal(export(tmp_path / "tty"), _env(server))
    assert code == 0, screen
    assert "export progress-export: the server builds the nuke export" in screen
    assert re.search(r"export progress-export@\S+: built in \d+m\d\ds, 4 file\(s\), \d+\.\d [kM]B", screen), screen
    bars = [r for r in screen.split("\r") if r.startswith("export progress-export [")]
    assert len(bars) == len(files), screen  # one redraw per file written, in place
    assert all(BAR.search(b) and re.search(r"\d+\.\d\d files/s  eta (--|\d+m\d\ds)", b) for b in bars), bars
    assert "4/4 100%" in bars[-1] and "[" + "#" * 24 + "]" in bars[-1]
    assert sorted(p.name for p in (tmp_path / "tty").iterdir()) == sorted(files)

    result = on_a_pipe(export(tmp_path / "pipe"), _env(server))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not BAR.search(result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("export progress-export ")]
    assert [line.split()[2] for line in lines] == ["1/4", "2/4", "3/4", "4/4"], result.stderr
    assert [line.split()[-3] for line in lines] == files, lines  # each line names the file written
    assert sorted(Path(line).name for line in result.stdout.split()) == sorted(files)

    quiet = on_a_pipe(export(tmp_path / "quiet", "--quiet"), _env(server))
    assert quiet.returncode == 0, quiet.stderr
    assert [line.split()[0] for line in quiet.stderr.splitlines()] == ["exported"], quiet.stderr  # the result only
    assert sorted(p.name for p in (tmp_path / "quiet").iterdir()) == sorted(files)


def test_lineage_index_on_a_terminal_and_on_a_pipe(plates: str, tmp_path: Path) -> None:
    folder = str(Path(plates).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}

    def index(db: str, *more: str) -> list[str]:
        return ["lineage", "index", folder, "--db", str(tmp_path / db), *more]

    code, screen = on_a_terminal(index("tty.sqlite"), env)
    assert code == 0, screen
    bars = [r for r in screen.split("\r") if r.startswith("lineage index [")]
    assert len(bars) == FRAMES, screen  # one redraw per file read
    assert all(re.search(r"\d+\.\d\d files/s  eta (--|\d+m\d\ds)  plate\.10\d\d\.exr", b) for b in bars), bars
    assert f"{FRAMES}/{FRAMES} 100%" in bars[-1] and "[" + "#" * 24 + "]" in bars[-1]
    # Again: nothing changed, nothing read, no bar.
    code, screen = on_a_terminal(index("tty.sqlite"), env)
    assert code == 0 and "lineage index [" not in screen and f"{FRAMES} unchanged" in screen, screen

    result = on_a_pipe(index("pipe.sqlite"), env)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not BAR.search(result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("lineage index ")]
    assert [line.split()[2] for line in lines] == ["1/12", "12/12"], result.stderr
    verbose = on_a_pipe(index("verbose.sqlite", "--verbose"), env)
    assert sum(line.endswith(".exr") and line.startswith("/") for line in verbose.stderr.splitlines()) == FRAMES

    quiet = on_a_pipe(index("quiet.sqlite", "--quiet"), env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout == result.stdout.replace("pipe.sqlite", "quiet.sqlite")  # the summary still prints
    both = on_a_pipe(index("both.sqlite", "--quiet", "--verbose"), env)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


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
