"""The `plateforge` command as users run it: real processes, real EXR files, real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import read_exr, read_exr_header, sha256_file, write_exr
from plateforge.frames import Frame
from plateforge.metrics import psnr
from plateforge.provenance import from_attributes, pixels_digest
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import ServerProcess


def plateforge(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    # Hermetic: a private server started by the command keeps its jobs and models out of $HOME.
    base["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
    base["PLATEFORGE_MODELS_DIR"] = str(Path(base["PLATEFORGE_JOBS_DIR"]) / "no-models")
    return subprocess.run(
        [sys.executable, "-m", "plateforge.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def server_env(server: ServerProcess) -> dict[str, str]:
    return {"PLATEFORGE_SERVER": server.address, "PLATEFORGE_TOKEN": server.token or ""}


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shot")
    write_shot(make_shot(frames=6, seed=3), folder)
    return folder


def test_help_lists_verbs() -> None:
    result = plateforge("--help")
    assert result.returncode == 0
    for verb in ("serve", "models", "info", "process", "demo"):
        assert verb in result.stdout


def test_unknown_verb() -> None:
    result = plateforge("frobnicate")
    assert result.returncode == 2 and "unknown verb" in result.stderr


def test_info_describes_windows_and_parts(testdata: Path) -> None:
    result = plateforge("info", str(testdata / "DisplayWindow" / "t08.exr"))
    assert result.returncode == 0, result.stderr
    assert "(30,40)-(429,339)" in result.stdout and "(0,0)-(500,400)" in result.stdout
    result = plateforge("info", "--json", str(testdata / "Beachball" / "multipart.0001.exr"))
    parts = json.loads(result.stdout)[str(testdata / "Beachball" / "multipart.0001.exr")]
    assert len(parts) == 10


def test_info_on_damaged_files_is_one_clear_line(testdata: Path) -> None:
    damaged = sorted((testdata / "Damaged").iterdir())[:12]
    for path in damaged:
        result = plateforge("info", str(path), timeout=60)
        assert "Traceback" not in result.stderr, path
        if result.returncode != 0:
            assert result.returncode == 2
            assert path.name in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1


def test_models_against_a_running_server(server: ServerProcess) -> None:
    result = plateforge("models", env=server_env(server))
    assert result.returncode == 0, result.stderr
    assert "cleanup-classical@1" in result.stdout and "passthrough@1" in result.stdout
    assert "param  inpaint_radius" in result.stdout


def test_models_without_token_fails_clearly(server: ServerProcess) -> None:
    result = plateforge("models", "--server", server.address)
    assert result.returncode == 2
    assert "missing token" in result.stderr and "Traceback" not in result.stderr


def test_process_writes_cleaned_frames_with_provenance(server: ServerProcess, shot_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.####.exr"
    result = plateforge(
        "process", "--model", "cleanup-classical",
        "--input", str(shot_dir / "plate.####.exr"), "--mask", str(shot_dir / "mask.####.exr"),
        "--frames", "1001-1006", "--output", str(out), "--param", "inpaint_radius=4",
        env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "6/6" in result.stderr
    for number in range(1001, 1007):
        path = tmp_path / f"out.{number}.exr"
        frame = read_exr(path)
        plate = read_exr(shot_dir / f"plate.{number}.exr")
        clean = read_exr(shot_dir / f"clean.{number}.exr")
        mask = read_exr(shot_dir / f"mask.{number}.exr")
        assert list(frame.channels) == list(plate.channels)
        assert all(frame.channels[c].dtype == plate.channels[c].dtype for c in plate.channels)
        assert np.array_equal(frame.channels["Z"], plate.channels["Z"])
        weight = mask.channels["A"].astype(np.float32)
        rgb = ("R", "G", "B")
        assert (
            psnr(frame.stack(rgb), clean.stack(rgb), mask=weight)
            > psnr(plate.stack(rgb), clean.stack(rgb), mask=weight) + 10
        )
        record = from_attributes(frame.attributes)
        assert record["model"] == "cleanup-classical" and record["tool"] == "cleanup"
        assert json.loads(record["params"])["inpaint_radius"] == 4
        assert record["sourceFileSha256"] == sha256_file(shot_dir / f"plate.{number}.exr")
        assert record["sourcePixelsDigest"] == pixels_digest(plate.replace(frame_number=number))
        assert record["frame"] == str(number)
    info = plateforge("info", str(tmp_path / "out.1003.exr"))
    assert "provenance model = cleanup-classical" in info.stdout


def test_process_starts_its_own_server(shot_dir: Path, tmp_path: Path) -> None:
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(shot_dir / "plate.####.exr"),
        "--frames", "1001-1002", "--output", str(tmp_path / "p.%04d.exr"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "starting a local server" in result.stderr
    for number in (1001, 1002):
        got, want = read_exr(tmp_path / f"p.{number:04d}.exr"), read_exr(shot_dir / f"plate.{number}.exr")
        assert all(np.array_equal(got.channels[c], want.channels[c]) for c in want.channels)


def test_bad_frame_stops_the_job_without_partial_files(server: ServerProcess, shot_dir: Path, tmp_path: Path) -> None:
    plates = tmp_path / "plates"
    plates.mkdir()
    for number in range(1001, 1005):
        frame = read_exr(shot_dir / f"plate.{number}.exr")
        if number == 1003:
            red = frame.channels["R"].copy()
            red[10, 10] = np.nan
            frame = frame.replace(channels={**frame.channels, "R": red})
        write_exr(plates / f"plate.{number}.exr", frame)
    out = tmp_path / "out"
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(plates / "plate.####.exr"),
        "--frames", "1001-1004", "--output", str(out / "o.####.exr"), env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 2
    assert "frame 1003 channel 'R' holds 1 NaN" in result.stderr
    assert "Traceback" not in result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "o.1003.exr" not in names and "o.1004.exr" not in names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    for name in names:
        read_exr(out / name)  # every file that exists is complete
    again = plateforge(
        "process", "--model", "passthrough", "--input", str(plates / "plate.####.exr"),
        "--frames", "1001-1004", "--output", str(out / "o.####.exr"), "--sanitize", "--skip-existing",
        env=server_env(server),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert np.isfinite(read_exr(out / "o.1003.exr").channels["R"]).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--frames", "1001-1002", "--mask", "nope.####.exr"], "does not exist", id="missing-mask"),
        pytest.param(["--frames", "10-1"], "backwards", id="bad-range"),
        pytest.param(["--frames", "1001", "--param", "radius"], "NAME=VALUE", id="bad-param"),
        pytest.param(["--frames", "1001", "--model", "nope"], "no model 'nope'", id="unknown-model"),
    ],
)
def test_process_errors_are_one_clear_line(
    server: ServerProcess, shot_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    model = [] if "--model" in args else ["--model", "cleanup-classical"]
    result = plateforge(
        "process", *model, "--input", str(shot_dir / "plate.####.exr"),
        "--output", str(tmp_path / "o.####.exr"), *args, env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("o.*"))


def test_mask_of_another_size_is_refused(server: ServerProcess, shot_dir: Path, tmp_path: Path) -> None:
    write_exr(tmp_path / "mask.1001.exr", Frame.from_array(np.zeros((40, 50), np.float32), names=("A",)))
    result = plateforge(
        "process", "--model", "cleanup-classical", "--input", str(shot_dir / "plate.####.exr"),
        "--mask", str(tmp_path / "mask.####.exr"), "--frames", "1001", "--output", str(tmp_path / "o.####.exr"),
        env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 2
    assert "windows" in result.stderr
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.slow
def test_demo(tmp_path: Path) -> None:
    result = plateforge("demo", "--out", str(tmp_path / "demo"), "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["psnr_in_mask_db"]["mean"] > figures["psnr_in_mask_before_cleanup_db"]["mean"] + 15
    sheet = tmp_path / "demo" / "contact_sheet.png"
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cleaned = sorted((tmp_path / "demo" / "cleaned").glob("cleaned.*.exr"))
    assert len(cleaned) == figures["frames"] == 24
    assert read_exr_header(cleaned[0])[0].attributes["plateforge/model"] == "cleanup-classical"


def test_keep_going_exits_1_with_a_summary_and_a_rerun_finishes(
    server: ServerProcess, shot_dir: Path, tmp_path: Path, testdata: Path
) -> None:
    plates = tmp_path / "plates"
    plates.mkdir()
    for number in range(1001, 1005):
        (plates / f"plate.{number}.exr").write_bytes((shot_dir / f"plate.{number}.exr").read_bytes())
    (plates / "plate.1003.exr").write_bytes((testdata / "Damaged" / "NULL_pointer").read_bytes())
    out, summary = tmp_path / "out", tmp_path / "logs" / "summary.json"
    args = [
        "process", "--model", "passthrough", "--input", str(plates / "plate.####.exr"),
        "--frames", "1001-1004", "--output", str(out / "o.####.exr"), "--skip-existing",
    ]  # fmt: skip
    result = plateforge(*args, "--keep-going", "--summary", str(summary), env=server_env(server))
    assert result.returncode == 1, result.stderr
    assert "frame 1003 failed" in result.stderr and "plate.1003.exr" in result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(summary.read_text())
    assert doc["schema"] == "plateforge.process-summary/1"
    assert doc["status"] == "partial" and doc["exit_code"] == 1
    assert doc["processed"] == [1001, 1002, 1004] and doc["skipped"] == []
    assert [f["frame"] for f in doc["failed"]] == [1003] and doc["failed"][0]["error"] == "ExrError"
    assert sorted(p.name for p in out.iterdir()) == ["o.1001.exr", "o.1002.exr", "o.1004.exr"]

    # Without --keep-going the damaged frame stops the run: exit 2, and the summary says so.
    stopped = plateforge(*args, "--summary", "-", env=server_env(server))
    assert stopped.returncode == 2 and "plate.1003.exr" in stopped.stderr
    assert json.loads(stopped.stdout)["status"] == "failed"

    (plates / "plate.1003.exr").write_bytes((shot_dir / "plate.1003.exr").read_bytes())
    again = plateforge(*args, "--summary", "-", env=server_env(server))
    assert again.returncode == 0, again.stderr
    line = json.loads(again.stdout.strip())
    assert line["status"] == "done" and line["exit_code"] == 0
    assert line["processed"] == [1003] and line["skipped"] == [1001, 1002, 1004]


def test_process_over_two_servers(server: ServerProcess, shot_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import start_server

    other = start_server()
    try:
        result = plateforge(
            "process", "--model", "passthrough", "--input", str(shot_dir / "plate.####.exr"),
            "--frames", "1001-1006", "--output", str(tmp_path / "o.####.exr"), "--summary", "-",
            "--server", f"{server.address},{other.address}", "--token", server.token or "",
        )  # fmt: skip
    finally:
        other.stop()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["processed"] == list(range(1001, 1007))
    assert any("passthrough frame" in line for line in other.stderr_lines)


def test_a_run_refused_up_front_still_writes_its_summary(server: ServerProcess, shot_dir: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    result = plateforge(
        "process", "--model", "nope", "--input", str(shot_dir / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "o.####.exr"), "--summary", str(summary), env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 2 and "no model 'nope'" in result.stderr
    doc = json.loads(summary.read_text())
    assert doc["status"] == "failed" and doc["exit_code"] == 2 and doc["error"] == "UnknownModelError"
