"""plateforge train / jobs / job against an in-process server with the Training service."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plateforge.cli.job import follow, reattach_hint
from plateforge.cli.main import main
from plateforge.jobs_client import JobEvent, JobInfo
from plateforge.models import parse_param
from tests.plateforge_server.jobs.test_jobs import TOKEN, InProcess, training_server
from tests.plateforge_server.training.helpers import write_pairs

FAST = ["--param", "batch=1", "--param", "crop=16", "--param", "warmup=1", "--param", "validation_size=32"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), frames=2, size=32)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    with training_server(tmp_path / "jobs") as proc:
        yield proc


def cli(server: InProcess, *args: str) -> list[str]:
    return [*args, "--server", server.address, "--token", TOKEN]


def test_train_watches_to_the_exported_model(
    server: InProcess, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        cli(server, "train", "--dataset", str(dataset), "--tool", "look", "--steps", "4", "--name", "cli-look", *FAST)
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    model = Path(out.strip().splitlines()[-1])
    assert (model / "model.safetensors").is_file()
    assert json.loads((model / "card.json").read_text())["name"] == "cli-look"
    assert "step 4/4" in err and "succeeded" in err

    assert main(cli(server, "jobs")) == 0
    table = capsys.readouterr().out
    assert "SUCCEEDED" in table and "4/4" in table and str(model) in table
    assert main(cli(server, "jobs", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["state"] == "SUCCEEDED"


def test_detach_cancel_and_resume(server: InProcess, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--dataset", str(dataset), "--tool", "look", "--steps", "300", "--detach", *FAST]
    args += ["--param", "checkpoint_every=2"]
    assert main(cli(server, *args)) == 0
    job_id = capsys.readouterr().out.strip()
    assert len(job_id) == 12
    assert main(cli(server, "job", "cancel", job_id)) == 0
    assert main(cli(server, "job", "watch", job_id)) == 1  # ended CANCELLED
    assert "cancelled" in capsys.readouterr().err
    assert server.manager.get(job_id).state == "CANCELLED"
    assert main(cli(server, "job", "resume", job_id, "--no-watch")) == 0
    assert "queued" in capsys.readouterr().out
    assert main(cli(server, "job", "cancel", job_id)) == 0
    server.manager.wait(job_id, timeout=60)


def test_unknown_job_and_unlicensed_dataset_are_errors(
    server: InProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(cli(server, "job", "watch", "nope")) == 2
    assert "no job 'nope'" in capsys.readouterr().err
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    manifest.write_text(manifest.read_text().replace('licence = "CC-BY-4.0"', 'licence = "NONE"', 1))
    assert main(cli(server, "train", "--dataset", str(manifest), "--tool", "look")) == 2
    assert "img.1001.exr" in capsys.readouterr().err


def test_jobs_need_a_server(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    assert main(["jobs"]) == 2
    assert "--server" in capsys.readouterr().err


def _job(step: int, state: str = "RUNNING") -> JobInfo:
    return JobInfo(
        id="abc123abc123",
        state=state,
        tool="look",
        dataset="d.toml",
        step=step,
        steps=10,
        loss=0.5,  # type: ignore[arg-type]
        val_psnr=None,
        error="",
        model_dir="",
        job_dir="",
        created_at=0.0,
        started_at=None,
        finished_at=None,
        config={},
    )


def test_ctrl_c_detaches_and_says_how_to_reattach(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from plateforge.cli import job

    def events() -> Iterator[JobEvent]:
        yield JobEvent(_job(0), True, 0.0, None, b"")
        yield JobEvent(_job(1), False, 1e-3, 9.0, b"")
        raise KeyboardInterrupt

    class Fake:
        def watch(self, job_id: str) -> Iterator[JobEvent]:
            return events()

    assert job.watch(Fake(), "abc123abc123", server="h:1") == 130  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert reattach_hint("abc123abc123", "h:1") in err and "step 1/10" in err


def test_follow_prints_a_line_per_state_change() -> None:
    out = io.StringIO()
    last = follow(
        [JobEvent(_job(0, "QUEUED"), True, 0, None, b""), JobEvent(_job(10, "SUCCEEDED"), True, 0, None, b"")],
        stream=out,
    )
    assert last is not None and last.state == "SUCCEEDED"
    assert out.getvalue().count("\n") == 2


def test_process_and_train_take_one_grammar() -> None:
    """process, train, the training runner and the bench all read --param with this one function
    (the grammar's own tests: tests/plateforge/test_models.py)."""
    from bench import quality
    from plateforge.cli import process, train
    from plateforge_server.training import run

    assert process.parse_param is train.parse_param is run.parse_param is quality.parse_param is parse_param
