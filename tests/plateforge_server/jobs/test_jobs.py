"""Training jobs end to end, in process: a grpc server with the Training service and the
plateforge interceptor on 127.0.0.1 port 0, and a real Client. ``training_server`` is also used
by tests/plateforge/cli/test_cli_train.py."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from plateforge.client import Client
from plateforge.errors import AuthError, LicenceError, UsageError
from plateforge.jobs_client import JobInfo, JobStateError, TrainingClient, UnknownJobError
from plateforge_server.app import ServerConfig, serving
from plateforge_server.jobs import JOB_SCHEMA, JobManager, read_job, write_job
from plateforge_server.training import latest
from tests.plateforge_server.training.helpers import write_pairs

TOKEN = "jobs-test-token"

#: TrainConfig fields for a run that finishes in a second or two on a CPU.
TINY: dict[str, object] = {
    "steps": 6,
    "batch": 1,
    "crop": 16,
    "warmup": 1,
    "checkpoint_every": 2,
    "preview_every": 2,
    "validation_every": 2,
    "validation_size": 32,
}
#: Slow enough to cancel or crash mid-run: many steps, a checkpoint every 2.
LONG: dict[str, object] = {**TINY, "steps": 400}


@dataclass
class InProcess:
    address: str
    manager: JobManager
    jobs_dir: Path


@contextmanager
def training_server(jobs_dir: Path, *, auto_resume: bool = True) -> Iterator[InProcess]:
    config = ServerConfig(token=TOKEN, tools=(), jobs_dir=jobs_dir, resume_jobs=auto_resume, grace=2.0)
    with serving(config) as running:
        assert running.jobs is not None
        yield InProcess(running.address, running.jobs, jobs_dir)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), frames=2, size=32)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[InProcess]:
    with training_server(tmp_path / "jobs") as proc:
        yield proc


@pytest.fixture
def jobs(running: InProcess) -> Iterator[TrainingClient]:
    with Client(running.address, token=TOKEN, timeout=60.0, retries=1) as client:
        yield TrainingClient(client)


def start(jobs: TrainingClient, dataset: Path, config: dict[str, object] = TINY, **kw: str) -> JobInfo:
    return jobs.start_training(dataset=str(dataset), tool="look", config=config, **kw)


def wait_for(jobs: TrainingClient, job_id: str, states: set[str], timeout: float = 60.0) -> JobInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}; it is {jobs.get(job_id).state}")


def wait_for_step(jobs: TrainingClient, job_id: str, step: int, timeout: float = 60.0) -> JobInfo:
    for event in jobs.watch(job_id):
        if event.job.step >= step:
            return event.job
    raise AssertionError(f"job {job_id} ended before step {step}")


def test_start_and_watch_to_succeeded(jobs: TrainingClient, dataset: Path, running: InProcess) -> None:
    job = start(jobs, dataset, model_name="sh010-look", model_version="v7")
    assert job.state in ("QUEUED", "RUNNING") and len(job.id) == 12 and job.steps == 6
    events = list(jobs.watch(job.id, preview_interval=0.01))
    assert events[0].state_changed  # the current state first
    steps = [e.job.step for e in events if not e.state_changed]
    assert steps == sorted(steps) and steps[-1] == 6
    assert all(e.lr > 0 and e.eta_seconds is not None for e in events if not e.state_changed)
    final = events[-1].job
    assert final.state == "SUCCEEDED" and final.error == ""
    model = Path(final.model_dir)
    assert model == running.jobs_dir / job.id / "train" / "model"
    assert (model / "model.safetensors").is_file()
    card = json.loads((model / "card.json").read_text())
    assert (card["name"], card["version"], card["tool"]) == ("sh010-look", "v7", "look")
    assert any(e.preview_png.startswith(b"\x89PNG") for e in events)
    saved = json.loads((running.jobs_dir / job.id / "job.json").read_text())
    assert saved["schema"] == JOB_SCHEMA and saved["state"] == "SUCCEEDED" and saved["model_dir"] == str(model)
    assert [j.id for j in jobs.list_jobs()] == [job.id]


def test_a_second_job_waits_queued_for_the_first(jobs: TrainingClient, dataset: Path) -> None:
    first = start(jobs, dataset, LONG)
    wait_for_step(jobs, first.id, 1)
    second = start(jobs, dataset)
    assert jobs.get(second.id).state == "QUEUED"
    time.sleep(0.3)
    assert jobs.get(second.id).state == "QUEUED" and jobs.get(first.id).state == "RUNNING"
    jobs.cancel(first.id)
    assert wait_for(jobs, first.id, {"CANCELLED"}).state == "CANCELLED"
    events = list(jobs.watch(second.id))
    assert events[-1].job.state == "SUCCEEDED"
    assert [j.id for j in jobs.list_jobs()] == [first.id, second.id]


def test_cancel_while_running_checkpoints(jobs: TrainingClient, dataset: Path, running: InProcess) -> None:
    job = start(jobs, dataset, LONG)
    wait_for_step(jobs, job.id, 3)
    jobs.cancel(job.id)
    ended = list(jobs.watch(job.id))[-1].job
    assert ended.state == "CANCELLED" and "cancelled" in ended.error
    checkpoint = latest(running.jobs_dir / job.id / "train" / "checkpoints")
    assert checkpoint is not None
    assert jobs.cancel(job.id).state == "CANCELLED"  # cancelling a finished job changes nothing


def test_cancel_a_queued_job(jobs: TrainingClient, dataset: Path) -> None:
    first = start(jobs, dataset, LONG)
    second = start(jobs, dataset)
    assert jobs.cancel(second.id).state == "CANCELLED"
    jobs.cancel(first.id)
    wait_for(jobs, first.id, {"CANCELLED"})
    assert jobs.get(second.id).state == "CANCELLED" and jobs.get(second.id).step == 0


def test_resume_a_cancelled_job_continues_from_its_checkpoint(jobs: TrainingClient, dataset: Path) -> None:
    job = start(jobs, dataset, {**TINY, "steps": 14})
    stopped = wait_for_step(jobs, job.id, 2)
    jobs.cancel(job.id)
    cancelled = wait_for(jobs, job.id, {"CANCELLED"})
    assert cancelled.step >= stopped.step
    assert jobs.resume(job.id).state == "QUEUED"
    events = list(jobs.watch(job.id))
    steps = [e.job.step for e in events if not e.state_changed]
    assert events[-1].job.state == "SUCCEEDED"
    assert steps and steps[0] > cancelled.step - 2  # continued, not restarted from step 1


def test_restart_recovery_marks_interrupted_and_resumes(tmp_path: Path, dataset: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    with training_server(jobs_dir) as first, Client(first.address, token=TOKEN, retries=1) as client:
        job = start(TrainingClient(client), dataset, LONG)
        wait_for_step(TrainingClient(client), job.id, 3)
    # The server stopped mid-run (shutdown checkpoints and records INTERRUPTED). Make it look like
    # a crash instead: job.json still says RUNNING, a partial out_dir with a checkpoint.
    record = read_job(jobs_dir / job.id)
    assert record.state == "INTERRUPTED" and latest(record.out_dir / "checkpoints") is not None
    crashed = dataclasses.replace(record, state="RUNNING", error="", finished_at=None)
    write_job(crashed)

    with training_server(jobs_dir, auto_resume=False) as second, Client(second.address, token=TOKEN) as client:
        jobs = TrainingClient(client)
        listed = jobs.get(job.id)
        assert listed.state == "INTERRUPTED" and "server stopped" in listed.error
        assert json.loads((jobs_dir / job.id / "job.json").read_text())["state"] == "INTERRUPTED"
        assert jobs.resume(job.id).state == "QUEUED"
        resumed_at = wait_for_step(jobs, job.id, 1).step
        assert resumed_at > 3  # from the checkpoint, not from the start
        jobs.cancel(job.id)
        wait_for(jobs, job.id, {"CANCELLED"})


def test_restart_with_auto_resume_finishes_the_job(tmp_path: Path, dataset: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    config = {**TINY, "steps": 14}
    with training_server(jobs_dir) as first, Client(first.address, token=TOKEN, retries=1) as client:
        job = start(TrainingClient(client), dataset, config)
        wait_for_step(TrainingClient(client), job.id, 2)
    record = read_job(jobs_dir / job.id)
    write_job(dataclasses.replace(record, state="RUNNING", error="", finished_at=None))
    step_at_crash = latest(record.out_dir / "checkpoints")
    assert step_at_crash is not None

    with training_server(jobs_dir) as second, Client(second.address, token=TOKEN) as client:
        jobs = TrainingClient(client)
        events = list(jobs.watch(job.id))
        assert events[-1].job.state == "SUCCEEDED", events[-1].job.error
        steps = [e.job.step for e in events if not e.state_changed]
        assert not steps or steps[0] > 1
        assert Path(events[-1].job.model_dir, "model.safetensors").is_file()


def test_unlicensed_dataset_is_refused_before_a_job_exists(jobs: TrainingClient, tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    text = manifest.read_text().replace('permitted_uses = ["train"]', 'permitted_uses = ["infer"]', 1)
    manifest.write_text(text)
    with pytest.raises(LicenceError, match=r"in/img\.1001\.exr"):
        start(jobs, manifest)
    assert jobs.list_jobs() == []


def test_material_changed_after_start_fails_the_job_naming_the_file(
    jobs: TrainingClient, dataset: Path, tmp_path: Path
) -> None:
    first = start(jobs, dataset, LONG)
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    second = start(jobs, manifest)  # licensed when queued ...
    (tmp_path / "data" / "out" / "img.1002.exr").write_bytes(b"not the registered frame")  # ... then changed
    jobs.cancel(first.id)
    failed = list(jobs.watch(second.id))[-1].job
    assert failed.state == "FAILED" and "img.1002.exr" in failed.error


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param({"stepz": 3}, "unknown field", id="unknown-field"),
        pytest.param({"steps": 0}, "steps must be", id="zero-steps"),
        pytest.param({"size": "huge"}, "size must be", id="bad-size"),
        pytest.param({"steps": 2.5}, "whole number", id="fractional-steps"),
    ],
)
def test_bad_config_is_refused(jobs: TrainingClient, dataset: Path, change: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        jobs.start_training(dataset=str(dataset), tool="look", params=change)  # type: ignore[arg-type]


def test_unknown_job_is_not_found(jobs: TrainingClient) -> None:
    for call in (jobs.cancel, jobs.resume, lambda i: list(jobs.watch(i))):
        with pytest.raises(UnknownJobError, match="no job 'nope'"):
            call("nope")


def test_the_token_is_required(running: InProcess) -> None:
    with Client(running.address, token="wrong", retries=0) as client, pytest.raises(AuthError):
        TrainingClient(client).list_jobs()


def test_resume_refuses_a_job_that_is_not_stopped(jobs: TrainingClient, dataset: Path) -> None:
    job = start(jobs, dataset)
    done = list(jobs.watch(job.id))[-1].job
    assert done.state == "SUCCEEDED"
    with pytest.raises(JobStateError, match="SUCCEEDED"):
        jobs.resume(job.id)


def test_a_watcher_that_goes_away_is_dropped(running: InProcess, jobs: TrainingClient, dataset: Path) -> None:
    job = start(jobs, dataset, LONG)
    stream = jobs.watch(job.id)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 10
    while running.manager._watchers.get(job.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running.manager._watchers.get(job.id)
    jobs.cancel(job.id)
    wait_for(jobs, job.id, {"CANCELLED"})


def test_unknown_job_schema_is_listed_broken_and_never_run(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "abc"
    folder.mkdir(parents=True)
    text = json.dumps({"schema": "plateforge.job/99", "id": "abc", "state": "QUEUED"})
    (folder / "job.json").write_text(text)
    with pytest.raises(UsageError, match=r"plateforge\.job/1"):
        read_job(folder)
    manager = JobManager(tmp_path / "jobs", device="cpu")
    try:
        [broken] = manager.list()
        assert broken.id == "abc" and broken.state == "BROKEN" and "plateforge.job/99" in broken.error
        assert not manager._queue  # never auto-resumed
        with pytest.raises(JobStateError, match="BROKEN"):
            manager.resume("abc")
        assert (folder / "job.json").read_text() == text  # left as it was, for someone to look at
    finally:
        manager.shutdown()
