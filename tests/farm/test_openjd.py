"""The Open Job Description templates in farm/openjd/, validated and run with the real openjd CLI
against real plateforge servers (one started per session by the template, or a shared one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with openjd-cli

from plateforge.exr import read_exr, sha256_file
from plateforge.provenance import from_attributes
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import REPO, ServerProcess

TEMPLATES = REPO / "farm" / "openjd"
BIN = Path(sys.executable).parent
OPENJD = BIN / "openjd"
PLATEFORGE = BIN / "plateforge"

pytestmark = pytest.mark.skipif(not OPENJD.exists(), reason="needs openjd-cli (the [dev] extra)")


def openjd(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    # Hermetic: servers the templates start keep their jobs and models out of $HOME.
    base["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
    base["PLATEFORGE_MODELS_DIR"] = str(Path(base["PLATEFORGE_JOBS_DIR"]) / "no-models")
    return subprocess.run(
        [str(OPENJD), *args], capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})}
    )


def summaries(stdout: str) -> list[dict[str, Any]]:
    """The JSON summaries the tasks printed (`plateforge process --summary -`), in order."""
    found = []
    for line in stdout.splitlines():
        start = line.find("{")
        if start >= 0 and '"schema": "plateforge.process-summary/1"' in line:
            found.append(json.loads(line[start:]))
    return found


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("openjd-shot")
    write_shot(make_shot(width=96, height=64, frames=8, seed=11), folder)
    return folder


def process_params(shot: Path, out: Path, *extra: str) -> list[str]:
    params = {
        "Plate": shot / "plate.####.exr",
        "Mask": shot / "mask.####.exr",
        "Output": out / "clean.####.exr",
        "Device": "cpu",
        "Plateforge": PLATEFORGE,
    }
    args = [a for name, value in params.items() for a in ("-p", f"{name}={value}")]
    return [*args, *extra]


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.yaml")), ids=lambda p: p.name)
def test_templates_pass_openjd_check(template: Path) -> None:
    result = openjd("check", str(template))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passes validation checks" in result.stdout


def test_both_templates_start_the_server_the_same_way() -> None:
    def server_env(path: Path) -> dict[str, str]:
        doc = yaml.safe_load(path.read_text())
        envs = [*doc.get("jobEnvironments", []), *(e for s in doc["steps"] for e in s.get("stepEnvironments", []))]
        (env,) = [e for e in envs if e["name"] == "PlateforgeServer"]
        return {f["name"]: f["data"] for f in env["script"]["embeddedFiles"]}

    assert server_env(TEMPLATES / "process-shot.yaml") == server_env(TEMPLATES / "train-then-process.yaml")


def test_process_shot_in_chunks_with_a_server_per_session(shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Every other frame, in chunks of 2: the tasks receive ranges such as 1001-1003:2.
    args = process_params(
        shot, out, "-p", "Frames=1001-1008:2", "-p", "ChunkSize=2", "-p", "ModelParams=inpaint_radius=3"
    )
    result = openjd("run", str(TEMPLATES / "process-shot.yaml"), *args)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "listening on 127.0.0.1:" in result.stdout and "stopped" in result.stdout
    assert "Chunks run: 2" in result.stdout
    tasks = summaries(result.stdout)
    assert [t["processed"] for t in tasks] == [[1001, 1003], [1005, 1007]]
    assert sorted(p.name for p in out.iterdir()) == [f"clean.{f}.exr" for f in (1001, 1003, 1005, 1007)]
    record = from_attributes(read_exr(out / "clean.1005.exr").attributes)
    assert record["model"] == "cleanup-classical" and json.loads(record["params"])["inpaint_radius"] == 3
    assert (record["modelVersion"], record["device"], record["precision"]) == ("1", "cpu", "fp32")
    assert "PLATEFORGE_TOKEN=" not in result.stdout.replace("openjd_redacted_env: PLATEFORGE_TOKEN=********", "")

    # Submitted again, one task only: everything is already done and nothing is rewritten.
    stamp = (out / "clean.1001.exr").stat().st_mtime_ns
    again = openjd(
        "run", str(TEMPLATES / "process-shot.yaml"), *args, "--tasks", json.dumps([{"Frame": "1001-1003:2"}])
    )
    assert again.returncode == 0, again.stdout[-4000:]
    assert [t["skipped"] for t in summaries(again.stdout)] == [[1001, 1003]]
    assert (out / "clean.1001.exr").stat().st_mtime_ns == stamp


def test_a_damaged_frame_fails_its_task_and_keeps_the_rest(
    shot: Path, tmp_path: Path, server: ServerProcess, testdata: Path
) -> None:
    plates = tmp_path / "plates"
    shutil.copytree(shot, plates)
    shutil.copyfile(testdata / "Damaged" / "NULL_pointer", plates / "plate.1002.exr")
    out = tmp_path / "out"
    args = process_params(plates, out, "-p", "Frames=1001-1004", "-p", "ChunkSize=4", "-p", "Model=passthrough@1")
    args += ["-p", "Mask=", "-p", f"Server={server.address}"]
    result = openjd("run", str(TEMPLATES / "process-shot.yaml"), *args, env={"PLATEFORGE_TOKEN": server.token or ""})
    assert result.returncode == 1, result.stdout[-4000:]
    (task,) = summaries(result.stdout)
    assert task["status"] == "partial" and task["processed"] == [1001, 1003, 1004]
    assert [f["frame"] for f in task["failed"]] == [1002]
    assert "listening on" not in result.stdout  # the shared server was used, none started
    assert sorted(p.name for p in out.iterdir()) == ["clean.1001.exr", "clean.1003.exr", "clean.1004.exr"]


def test_an_unpinned_model_is_refused_by_every_task(shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = process_params(shot, out, "-p", "Frames=1001-1004", "-p", "ChunkSize=2", "-p", "Model=cleanup-classical")
    before = {p.name: sha256_file(str(p)) for p in shot.iterdir()}
    result = openjd("run", str(TEMPLATES / "process-shot.yaml"), *args)
    assert result.returncode != 0
    assert "Model=cleanup-classical is not pinned to a version" in result.stdout, result.stdout[-3000:]
    assert "plateforge models --pin cleanup-classical" in result.stdout
    assert not out.exists()
    assert {p.name: sha256_file(str(p)) for p in shot.iterdir()} == before


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with look-x@1 (the identity) and look-x@2 (another net)."""
    torch = pytest.importorskip("torch")
    from plateforge_server.nets.unet import UNet
    from tests.plateforge_server.tools.test_learned import make_model, net_config

    root = tmp_path_factory.mktemp("farm-models") / "models"
    make_model(root / "look-x" / "1", name="look-x", version="1")
    other = UNet(net_config(mask=False))
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05)
    make_model(root / "look-x" / "2", name="look-x", version="2", net=other)
    return root


def pin(ref: str, models: Path) -> tuple[str, str]:
    """What `plateforge models --pin` prints, from a private server over ``models``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env["PLATEFORGE_MODELS_DIR"] = str(models)
    env["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
    result = subprocess.run(
        [str(PLATEFORGE), "models", "--pin", ref], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    model, digest = result.stdout.split()
    return model, digest


def test_a_pinned_job_uses_its_version_in_every_task(shot: Path, two_versions: Path, tmp_path: Path) -> None:
    model, digest = pin("look-x@1", two_versions)
    assert model == "look-x@1"
    out = tmp_path / "out"
    args = process_params(shot, out, "-p", "Frames=1001-1004", "-p", "ChunkSize=2", "-p", "Mask=")
    args += ["-p", f"Model={model}", "-p", f"ModelHash={digest}", "-p", f"ModelsDir={two_versions}"]
    result = openjd("run", str(TEMPLATES / "process-shot.yaml"), *args)
    assert result.returncode == 0, result.stdout[-4000:]
    assert [t["model"] for t in summaries(result.stdout)] == ["look-x@1", "look-x@1"]
    for number in range(1001, 1005):
        frame = read_exr(out / f"clean.{number}.exr")
        record = from_attributes(frame.attributes)
        assert (record["modelVersion"], record["modelHash"]) == ("1", digest)
        plate = read_exr(shot / f"plate.{number}.exr")
        assert np.array_equal(frame.channels["R"], plate.channels["R"])  # version 1, the identity


def test_a_worker_serving_another_model_refuses_its_task(shot: Path, two_versions: Path, tmp_path: Path) -> None:
    _, digest = pin("look-x@2", two_versions)  # the hash of another model than the one named
    out = tmp_path / "out"
    args = process_params(shot, out, "-p", "Frames=1001-1002", "-p", "ChunkSize=2", "-p", "Mask=")
    args += ["-p", "Model=look-x@1", "-p", f"ModelHash={digest}", "-p", f"ModelsDir={two_versions}"]
    result = openjd("run", str(TEMPLATES / "process-shot.yaml"), *args)
    assert result.returncode != 0
    assert f"but this job was pinned to {digest}" in result.stdout, result.stdout[-4000:]
    (task,) = summaries(result.stdout)
    assert task["status"] == "failed" and task["error"] == "UnknownModelError"
    assert not out.exists()


@pytest.mark.slow
def test_train_then_process(shot: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_shot(make_shot(width=96, height=64, frames=4, seed=2), data)
    source = 'path = "{}"\nlicence = "CC-BY-4.0"\nrights_holder = "Test Pictures"\npermitted_uses = ["train"]\n'
    manifest = data / "dataset.toml"
    manifest.write_text(
        'schema = "plateforge.dataset/1"\nname = "farm-test"\n'
        + "\n[[sources]]\n" + source.format("plate.*.exr") + 'role = "plate"\n'
        + "\n[[sources]]\n" + source.format("mask.*.exr") + 'role = "mask"\n'
    )  # fmt: skip
    out = tmp_path / "out"
    args = process_params(data, out, "-p", "Frames=1001-1004", "-p", "ChunkSize=2")
    args += ["-p", f"Dataset={manifest}", "-p", "ModelName=farm-clean", "-p", "Steps=4"]
    args += ["-p", "TrainParams=batch=1 crop=16 warmup=1 validation_size=32"]
    args += ["-p", f"ModelsDir={tmp_path / 'models'}", "-p", f"JobsDir={tmp_path / 'jobs'}"]
    result = openjd("run", str(TEMPLATES / "train-then-process.yaml"), *args)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "step 4/4" in result.stdout
    assert (tmp_path / "models" / "farm-clean").is_dir()
    assert [t["processed"] for t in summaries(result.stdout)] == [[1001, 1002], [1003, 1004]]
    record = from_attributes(read_exr(out / "clean.1004.exr").attributes)
    assert record["model"] == "farm-clean" and record["modelVersion"] == "step4"
    assert [t["model"] for t in summaries(result.stdout)] == ["farm-clean@step4", "farm-clean@step4"]


@pytest.mark.slow
def test_distributed_training_on_two_ranks_resumes_after_a_lost_checkpoint(tmp_path: Path) -> None:
    """train-distributed.yaml under the real torchrun: two gloo ranks on this node train one model;
    run again after the newest checkpoint is lost (a node died), it resumes from the one before."""
    pytest.importorskip("torch")
    from plateforge_server.training.checkpoints import checkpoint_name, list_checkpoints
    from tests.plateforge_server.training.helpers import write_pairs

    manifest = write_pairs(tmp_path / "data", frames=3, size=64)
    run_dir = tmp_path / "run"
    fast = "steps=6 batch=2 crop=32 lr=1e-3 warmup=2 checkpoint_every=3 preview_every=1000"
    fast += " validation_every=1000 validation_size=64 device=cpu tool=look"
    params = {"Dataset": manifest, "RunDir": run_dir, "GpusPerNode": 2, "TrainParams": fast, "Python": sys.executable}
    args = [a for name, value in params.items() for a in ("-p", f"{name}={value}")]
    first = openjd("run", str(TEMPLATES / "train-distributed.yaml"), *args, timeout=600)
    assert first.returncode == 0, first.stdout[-4000:]
    assert "rank 0/2 done at step 6 (resumed from 0)" in first.stdout
    assert "rank 1/2 done at step 6 (resumed from 0)" in first.stdout
    assert sorted(s for s, _ in list_checkpoints(run_dir / "checkpoints")) == [3, 6]

    (run_dir / "checkpoints" / checkpoint_name(6)).unlink()
    again = openjd("run", str(TEMPLATES / "train-distributed.yaml"), *args, timeout=600)
    assert again.returncode == 0, again.stdout[-4000:]
    assert "rank 0/2 done at step 6 (resumed from 3)" in again.stdout
