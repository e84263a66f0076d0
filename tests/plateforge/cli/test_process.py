"""`plateforge process` as users run it, where it must never lose footage or mislead: outputs that
would overwrite the inputs, Ctrl-C, model references (NAME@VERSION), pinned hashes and precision.

Every case runs the real command in a subprocess against a real server, and checks the sentence
the user reads, the exit status and that no input file changed (sha256 before and after)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import read_exr, read_exr_header, sha256_file, write_exr
from plateforge.provenance import from_attributes
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import ServerProcess, start_server

pytest.importorskip("torch")
from tests.plateforge_server.tools.test_learned import make_model


def _env(server: ServerProcess | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
    env["PLATEFORGE_MODELS_DIR"] = str(Path(env["PLATEFORGE_JOBS_DIR"]) / "no-models")
    if server is not None:
        env |= {"PLATEFORGE_SERVER": server.address, "PLATEFORGE_TOKEN": server.token or ""}
    return env


def plateforge(*args: str, server: ServerProcess | None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "plateforge.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env(server))


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (symlinks by what they point at), by relative path."""
    return {str(p.relative_to(folder)): sha256_file(str(p)) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    folder = tmp_path / "shot"
    write_shot(make_shot(width=64, height=48, frames=5, seed=4), folder)
    return folder


# -- an output that is an input -----------------------------------------------------------------


def _same_pattern(shot: Path) -> str:
    return str(shot / "plate.####.exr")


def _printf_spelling(shot: Path) -> str:
    return str(shot / "plate.%04d.exr")


def _other_spelling(shot: Path) -> str:
    return str(shot / ".." / shot.name / "." / "plate.####.exr")


def _relative_spelling(shot: Path) -> str:
    return os.path.relpath(shot / "plate.####.exr")


def _folder_symlink(shot: Path) -> str:
    link = shot.parent / "linked"
    link.symlink_to(shot, target_is_directory=True)
    return str(link / "plate.####.exr")


def _file_symlinks(shot: Path) -> str:
    out = shot.parent / "out"
    out.mkdir()
    for number in range(1001, 1006):
        (out / f"clean.{number}.exr").symlink_to(shot / f"plate.{number}.exr")
    return str(out / "clean.####.exr")


def _hardlink_to_a_neighbour(shot: Path) -> str:
    # Only frame 1004's output is a hardlink, to the plate of 1005: a neighbour that frame 1003
    # still reads (temporal radius 2) after 1004 would have been written.
    out = shot.parent / "out"
    out.mkdir()
    os.link(shot / "plate.1005.exr", out / "clean.1004.exr")
    return str(out / "clean.####.exr")


def _mask_overwritten(shot: Path) -> str:
    return str(shot / "mask.####.exr")


@pytest.mark.parametrize(
    ("make_output", "said"),
    [
        pytest.param(_same_pattern, "would overwrite input 'plate'", id="same-pattern"),
        pytest.param(_printf_spelling, "would overwrite input 'plate'", id="printf-spelling"),
        pytest.param(_other_spelling, "would overwrite input 'plate'", id="dotdot-spelling"),
        pytest.param(_relative_spelling, "would overwrite input 'plate'", id="relative-spelling"),
        pytest.param(_folder_symlink, "would overwrite input 'plate'", id="folder-symlink"),
        pytest.param(_file_symlinks, "would overwrite input 'plate'", id="file-symlinks"),
        pytest.param(_hardlink_to_a_neighbour, "plate.1005.exr", id="hardlink-to-a-neighbour"),
        pytest.param(_mask_overwritten, "would overwrite input 'mask'", id="mask"),
    ],
)
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(
    server: ServerProcess, shot: Path, make_output: Callable[[Path], str], said: str
) -> None:
    output = make_output(shot)
    before = hashes(shot)
    outputs_before = hashes(shot.parent)
    result = plateforge(
        "process", "--model", "cleanup-classical", "--input", str(shot / "plate.####.exr"),
        "--mask", str(shot / "mask.####.exr"), "--frames", "1001-1005", "--output", output,
        server=server,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "nothing was written" in result.stderr, result.stderr
    assert output in result.stderr or said.endswith(".exr")  # names the output pattern as given
    assert "Traceback" not in result.stderr
    assert hashes(shot) == before
    assert hashes(shot.parent) == outputs_before  # nothing new anywhere


def test_a_still_clean_plate_given_as_output_is_refused(server: ServerProcess, shot: Path, tmp_path: Path) -> None:
    """A single-file input (used for every frame) compared with an output pattern's frames."""
    still = tmp_path / "still.exr"
    write_exr(str(still), read_exr(shot / "plate.1001.exr"))
    link = tmp_path / "out"
    link.mkdir()
    (link / "o.1001.exr").symlink_to(still)
    before = sha256_file(str(still))
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(still), "--frames", "1001",
        "--output", str(link / "o.####.exr"), server=server,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"would overwrite input 'plate' {str(still)!r}" in result.stderr
    assert sha256_file(str(still)) == before


def test_a_summary_over_a_plate_is_refused(server: ServerProcess, shot: Path, tmp_path: Path) -> None:
    before = hashes(shot)
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(shot / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "o.####.exr"), "--summary", str(shot / "plate.1001.exr"), server=server,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"--summary {shot / 'plate.1001.exr'} is an EXR image" in result.stderr
    assert hashes(shot) == before and not (tmp_path / "o.1001.exr").exists()


def test_outputs_elsewhere_are_written(server: ServerProcess, shot: Path, tmp_path: Path) -> None:
    before = hashes(shot)
    result = plateforge(
        "process", "--model", "cleanup-classical", "--input", str(shot / "plate.####.exr"),
        "--mask", str(shot / "mask.####.exr"), "--frames", "1001-1005",
        "--output", str(tmp_path / "clean" / "plate.####.exr"), server=server,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "clean").iterdir())) == 5
    assert hashes(shot) == before


# -- Ctrl-C -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long-shot")
    write_shot(make_shot(width=480, height=270, frames=24, seed=5), folder)
    return folder


def _start(args: list[str], server: ServerProcess | None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "plateforge.cli.main", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(server))


def _wait_for(process: subprocess.Popen[str], text: str, lines: list[str], timeout: float = 120) -> None:
    """Read the command's stderr until a line holds ``text``."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"never printed {text!r}: {''.join(lines)}")


def test_ctrl_c_stops_after_the_frame_in_hand_and_writes_a_cancelled_summary(
    server: ServerProcess, long_shot: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"status": "done", "processed": [1, 2, 3]}))  # an older run's
    before = hashes(long_shot)
    out = tmp_path / "out"
    args = [
        "process", "--model", "cleanup-classical", "--input", str(long_shot / "plate.####.exr"),
        "--mask", str(long_shot / "mask.####.exr"), "--frames", "1001-1024",
        "--output", str(out / "clean.####.exr"), "--summary", str(summary),
    ]  # fmt: skip
    process = _start(args, server)
    lines: list[str] = []
    _wait_for(process, "1/24", lines)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = "".join(lines) + rest
    assert process.returncode == 130, stderr
    report = json.loads(summary.read_text())
    written = sorted(p.name for p in out.iterdir())
    assert report["status"] == "cancelled" and report["exit_code"] == 130
    assert 1 <= len(report["processed"]) < 24
    assert [Path(p).name for p in report["outputs"]] == written == [f"clean.{f}.exr" for f in report["processed"]]
    assert report["not_reached"] == [f for f in range(1001, 1025) if f not in report["processed"]]
    assert f"wrote {len(written)} of 24 frames; rerun with --skip-existing" in stderr
    assert "Traceback" not in stderr
    for name in written:  # every file written is whole
        assert read_exr(out / name).channels["R"].shape == (270, 480)
    assert not [p for p in out.iterdir() if p.suffix != ".exr"]  # no temporary file left behind
    assert hashes(long_shot) == before

    # What the sentence says works: the rerun does the rest and skips what was written.
    again = plateforge(*args, "--skip-existing", server=server)
    assert again.returncode == 0, again.stderr
    done = json.loads(summary.read_text())
    assert done["status"] == "done" and done["skipped"] == report["processed"]
    assert len(list(out.iterdir())) == 24


def test_ctrl_c_while_a_finished_run_shuts_down_changes_nothing(long_shot: Path, tmp_path: Path) -> None:
    """No --server: the command stops its private server after the last frame; an interrupt then
    must not turn the finished run into an interrupted one."""
    summary = tmp_path / "summary.json"
    out = tmp_path / "out"
    args = [
        "process", "--model", "passthrough", "--input", str(long_shot / "plate.####.exr"), "--frames", "1001-1003",
        "--output", str(out / "o.####.exr"), "--summary", str(summary),
    ]  # fmt: skip
    process = _start(args, None)
    lines: list[str] = []
    _wait_for(process, "3/3", lines)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = "".join(lines) + rest
    assert process.returncode == 0, stderr
    assert json.loads(summary.read_text())["status"] == "done"
    assert "interrupted" not in stderr and "wrote 3 file(s)" in stderr


def test_ctrl_c_before_the_first_frame_is_a_cancelled_run(long_shot: Path, tmp_path: Path) -> None:
    """Interrupted while it starts its private server: nothing written, and it says so."""
    summary = tmp_path / "summary.json"
    args = [
        "process", "--model", "passthrough", "--input", str(long_shot / "plate.####.exr"), "--frames", "1001-1003",
        "--output", str(tmp_path / "out" / "o.####.exr"), "--summary", str(summary),
    ]  # fmt: skip
    process = _start(args, None)
    lines: list[str] = []
    _wait_for(process, "starting a local server", lines)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = "".join(lines) + rest
    assert process.returncode == 130, stderr
    assert "wrote 0 of 3 frames; rerun with --skip-existing" in stderr and "Traceback" not in stderr
    report = json.loads(summary.read_text())
    assert report["status"] == "cancelled" and report["processed"] == [] and report["not_reached"] == [1001, 1002, 1003]
    assert not (tmp_path / "out").exists()


def test_the_summary_says_running_while_the_command_runs(
    server: ServerProcess, long_shot: Path, tmp_path: Path
) -> None:
    """Killed outright (no chance to write anything), the command leaves no older "done" behind."""
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"status": "done"}))
    args = [
        "process", "--model", "cleanup-classical", "--input", str(long_shot / "plate.####.exr"),
        "--mask", str(long_shot / "mask.####.exr"), "--frames", "1001-1024",
        "--output", str(tmp_path / "out" / "c.####.exr"), "--summary", str(summary),
    ]  # fmt: skip
    process = _start(args, server)
    lines: list[str] = []
    _wait_for(process, "1/24", lines)
    process.kill()
    process.communicate(timeout=60)
    assert json.loads(summary.read_text())["status"] == "running"


# -- model references ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server with look-x@1 (the identity net) and look-x@2 (another net)."""
    import torch

    from plateforge_server.nets.unet import UNet
    from tests.plateforge_server.tools.test_learned import net_config

    root = tmp_path_factory.mktemp("versions") / "models"
    make_model(root / "look-x" / "1", name="look-x", version="1")
    other = UNet(net_config(mask=False))
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05)
    make_model(root / "look-x" / "2", name="look-x", version="2", net=other)
    server = start_server("--models-dir", str(root))
    yield server, root
    server.stop()


def test_what_models_prints_can_be_pasted_back(
    versions: tuple[ServerProcess, Path], shot: Path, tmp_path: Path
) -> None:
    server, _ = versions
    listing = plateforge("models", server=server)
    assert listing.returncode == 0, listing.stderr
    refs = [line.split()[0] for line in listing.stdout.splitlines() if line.startswith("look-x@")]
    assert refs == ["look-x@1", "look-x@2"] or refs == ["look-x@2", "look-x@1"]
    before = hashes(shot)
    for ref in refs:
        out = tmp_path / ref
        result = plateforge(
            "process", "--model", ref, "--input", str(shot / "plate.####.exr"), "--frames", "1001-1002",
            "--output", str(out / "o.####.exr"), server=server,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        record = from_attributes(read_exr(out / "o.1001.exr").attributes)
        assert f"{record['model']}@{record['modelVersion']}" == ref
    plate = read_exr(shot / "plate.1001.exr")
    identity = read_exr(tmp_path / "look-x@1" / "o.1001.exr")
    assert np.array_equal(identity.channels["R"], plate.channels["R"])  # version 1 is the identity
    assert not np.array_equal(read_exr(tmp_path / "look-x@2" / "o.1001.exr").channels["R"], plate.channels["R"])
    assert hashes(shot) == before


def test_a_bare_name_is_its_newest_version(versions: tuple[ServerProcess, Path], shot: Path, tmp_path: Path) -> None:
    server, _ = versions
    result = plateforge(
        "process", "--model", "look-x", "--input", str(shot / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "o.####.exr"), "--summary", "-", server=server,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "look-x@2"
    assert from_attributes(read_exr(tmp_path / "o.1001.exr").attributes)["modelVersion"] == "2"


@pytest.mark.parametrize(
    ("ref", "said"),
    [
        pytest.param("look-x@7", "model 'look-x' has no version '7' on", id="unknown-version"),
        pytest.param("look-y@1", "no model 'look-y' on", id="unknown-name"),
        pytest.param("look-x@", "write NAME or NAME@VERSION", id="empty-version"),
        pytest.param("@1", "write NAME or NAME@VERSION", id="empty-name"),
        pytest.param("look x@1", "write NAME or NAME@VERSION", id="space"),
    ],
)
def test_a_bad_model_reference_is_refused_clearly(
    versions: tuple[ServerProcess, Path], shot: Path, tmp_path: Path, ref: str, said: str
) -> None:
    server, _ = versions
    before = hashes(shot)
    result = plateforge(
        "process", "--model", ref, "--input", str(shot / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "o.####.exr"), server=server,
    )  # fmt: skip
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    if ref == "look-x@7":
        assert "it has look-x@1, look-x@2" in result.stderr
    assert not (tmp_path / "o.1001.exr").exists()
    assert hashes(shot) == before


def test_models_pin_prints_the_reference_and_hash(versions: tuple[ServerProcess, Path]) -> None:
    from plateforge.modelcards import read_model_card

    server, root = versions
    pinned = plateforge("models", "--pin", "look-x", server=server)
    assert pinned.returncode == 0, pinned.stderr
    card = read_model_card(root / "look-x" / "2", verify=False)
    assert pinned.stdout.split() == ["look-x@2", card["weights_sha256"]]
    as_json = plateforge("models", "--pin", "look-x@1", "--json", server=server)
    first = read_model_card(root / "look-x" / "1", verify=False)
    assert json.loads(as_json.stdout) == {"model": "look-x@1", "hash": first["weights_sha256"]}
    missing = plateforge("models", "--pin", "look-x@9", server=server)
    assert missing.returncode == 2 and "it has look-x@1, look-x@2" in missing.stderr


def test_a_pinned_hash_that_the_server_does_not_serve_is_refused(
    versions: tuple[ServerProcess, Path], shot: Path, tmp_path: Path
) -> None:
    server, _ = versions
    result = plateforge(
        "process", "--model", "look-x@1", "--model-hash", "0" * 64, "--input", str(shot / "plate.####.exr"),
        "--frames", "1001", "--output", str(tmp_path / "o.####.exr"), server=server,
    )  # fmt: skip
    assert result.returncode == 2
    assert "but this job was pinned to " + "0" * 64 in result.stderr
    assert not (tmp_path / "o.1001.exr").exists()


# -- precision ----------------------------------------------------------------------------------


def test_outputs_record_device_and_precision_and_a_change_is_another_job(
    server: ServerProcess, shot: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [
        "process", "--model", "passthrough", "--input", str(shot / "plate.####.exr"), "--frames", "1001-1003",
        "--output", str(out / "o.####.exr"), "--summary", "-", "--precision", "fp32",
    ]  # fmt: skip
    first = plateforge(*args, server=server)
    assert first.returncode == 0, first.stderr
    record = from_attributes(read_exr_header(str(out / "o.1002.exr"))[0].attributes)
    assert (record["device"], record["precision"]) == ("cpu", "fp32")

    # Frame 1002 as a GPU worker running fp16 would have made it: another job, so it is redone.
    frame = read_exr(out / "o.1002.exr")
    write_exr(str(out / "o.1002.exr"), frame.replace(attributes={**frame.attributes, "plateforge/precision": "fp16"}))
    again = plateforge(*args, "--skip-existing", server=server)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["skipped"] == [1001, 1003] and summary["redone"] == [1002]
    assert from_attributes(read_exr(out / "o.1002.exr").attributes)["precision"] == "fp32"


def test_an_unknown_precision_is_refused(server: ServerProcess, shot: Path, tmp_path: Path) -> None:
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(shot / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "o.####.exr"), "--precision", "fp16", server=server,
    )  # fmt: skip
    assert result.returncode == 2 and "invalid choice: 'fp16'" in result.stderr
