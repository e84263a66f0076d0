"""Training jobs stay within bounds, against real server processes on loopback (issue 18, item 3).

A config outside the documented bounds (docs/training-limits.md) is INVALID_ARGUMENT naming the
field and its bound before any job exists; the queue is capped (RESOURCE_EXHAUSTED); ListJobs
comes in pages; a job record on disk that cannot be read is listed BROKEN with the reason, while
the others list as ever, and is never resumed. The fuzzing of configs is in test_fuzz.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from plateforge import codec
from plateforge.client import Client
from plateforge.errors import JobStateError, QueueFullError
from plateforge.jobs_client import TrainingClient
from plateforge.v1 import training_pb2, training_pb2_grpc
from plateforge_server.jobs import JOB_FILE, JobManager
from plateforge_server.jobs._limits import CONFIG_BOUNDS, LIMITS, limits_markdown
from plateforge_server.training import TrainConfig
from tests.conftest import REPO, TOKEN, ServerProcess, start_server
from tests.plateforge_server.training.helpers import write_pairs
from tests.reliability.helpers import wait_until

pytestmark = pytest.mark.timeout(180)

AUTH = (("authorization", f"Bearer {TOKEN}"),)
MIB = 1024 * 1024
#: Many steps, so a job stays RUNNING (or QUEUED behind one) until it is cancelled.
LONG = {"steps": 5000, "batch": 1, "crop": 16, "validation_size": 32, "checkpoint_every": 1000}
OPTIONS = [("grpc.max_send_message_length", 200 * MIB), ("grpc.max_receive_message_length", 200 * MIB)]


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    base = tmp_path_factory.mktemp("limits")
    manifest = write_pairs(base / "footage" / "pairs", frames=2, size=32)
    proc = start_server(
        "--data-root", str(base / "footage"), "--jobs-dir", str(base / "jobs"), "--models-dir", str(base / "models")
    )
    yield proc, manifest
    proc.stop()


def _stub(channel: grpc.Channel) -> training_pb2_grpc.TrainingStub:
    return training_pb2_grpc.TrainingStub(channel)


def _all_jobs(address: str) -> list[str]:
    with Client(address, token=TOKEN, retries=0) as client:
        return [j.id for j in TrainingClient(client).list_jobs()]


def _cancel_all(address: str) -> None:
    with Client(address, token=TOKEN, retries=0) as client:
        jobs = TrainingClient(client)
        for job in jobs.list_jobs(page_size=LIMITS.max_page_size):
            if job.state in ("QUEUED", "RUNNING"):
                jobs.cancel(job.id)
        assert wait_until(lambda: all(j.finished for j in jobs.list_jobs()), timeout=60)


def _huge_json_int(digits: int) -> str:
    return "1" + "0" * (digits - 1)


OUT_OF_BOUNDS = [
    pytest.param({"params": {"steps": 1e30}}, "steps", "1_000_000", id="steps-1e30-param"),
    pytest.param({"config_json": '{"steps": 1e30}'}, "steps", "1_000_000", id="steps-1e30-json"),
    pytest.param({"config_json": '{"steps": ' + _huge_json_int(31) + "}"}, "steps", "1_000_000", id="steps-10**30"),
    pytest.param({"params": {"batch": 1e8}}, "batch", "64", id="batch-10**8"),
    pytest.param({"config_json": '{"batch": 100000000}'}, "batch", "64", id="batch-10**8-json"),
    pytest.param({"config_json": '{"batch": 64, "crop": 1024}'}, "batch * crop**2", "4_194_304", id="step-pixels"),
    pytest.param({"params": {"prompt": "x" * (60 * MIB)}}, "prompt", "2000 characters", id="60MiB-prompt-param"),
    pytest.param(
        {"config_json": json.dumps({"prompt": "x" * (60 * MIB)})}, "config_json", "65_536 bytes", id="60MiB-config"
    ),
    pytest.param({"model_name": "m" * (60 * MIB)}, "model name", "128 characters", id="60MiB-model-name"),
    pytest.param({"dataset": "d" * (60 * MIB)}, "dataset", "4096 characters", id="60MiB-dataset"),
    pytest.param({"tool": "t" * (60 * MIB)}, "tool", "64 characters", id="60MiB-tool"),
    pytest.param({"config_json": "[" * 60000}, "config_json", "JSON", id="deep-json"),
    pytest.param({"params": {"lr": float("nan")}}, "lr", "finite number", id="nan-lr"),
    pytest.param({"params": {"seed": -1.0}}, "seed", "4_294_967_295", id="negative-seed"),
    pytest.param(
        {"config_json": '{"input_channels": ["R", "G", "B"' + ', "x"' * 40 + "]}"},
        "input_channels",
        "32",
        id="many-channels",
    ),
    pytest.param({"config_json": '{"keep_checkpoints": 1000000}'}, "keep_checkpoints", "100", id="many-checkpoints"),
]


@pytest.mark.parametrize(("fields", "field", "bound"), OUT_OF_BOUNDS)
def test_a_config_outside_its_bounds_is_refused_before_a_job_exists(
    rooted: tuple[ServerProcess, Path], fields: dict[str, object], field: str, bound: str
) -> None:
    proc, manifest = rooted
    params = fields.pop("params", {})
    assert isinstance(params, dict)
    request = training_pb2.StartTrainingRequest(
        dataset=str(manifest), tool="look", params={k: codec.param_to_proto(v) for k, v in params.items()}
    )
    for key, value in fields.items():
        setattr(request, key, value)
    before = _all_jobs(proc.address)
    with grpc.insecure_channel(proc.address, options=OPTIONS) as channel, pytest.raises(grpc.RpcError) as info:
        _stub(channel).StartTraining(request, metadata=AUTH, timeout=60)
    details = info.value.details() or ""
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details[:500]
    assert field in details and bound in details, details
    assert len(details) < 2000, f"the message echoes the request: {len(details)} characters"
    assert _all_jobs(proc.address) == before  # no job was created; and the listing still answers


def test_the_bounds_table_covers_every_config_field_and_is_documented() -> None:
    import dataclasses

    assert list(CONFIG_BOUNDS) == [f.name for f in dataclasses.fields(TrainConfig)]
    defaults = TrainConfig()
    for name, bound in CONFIG_BOUNDS.items():  # the defaults are within their own bounds
        bound.check(name, getattr(defaults, name))
    doc = (REPO / "docs" / "training-limits.md").read_text(encoding="utf-8")
    assert limits_markdown() in doc, "docs/training-limits.md is stale: paste limits_markdown() into it"


def test_the_queue_is_capped(rooted: tuple[ServerProcess, Path]) -> None:
    proc, manifest = rooted
    with Client(proc.address, token=TOKEN, retries=0) as client:
        jobs = TrainingClient(client)
        try:
            started = [jobs.start_training(dataset=str(manifest), tool="look", config=LONG)]
            started += [
                jobs.start_training(dataset=str(manifest), tool="look", config=LONG)
                for _ in range(LIMITS.max_queued - 1)
            ]
            with pytest.raises(QueueFullError, match=f"queue is full.*at most {LIMITS.max_queued}"):
                jobs.start_training(dataset=str(manifest), tool="look", config=LONG)
            jobs.cancel(started[-1].id)  # a place frees up
            assert wait_until(lambda: jobs.get(started[-1].id).state == "CANCELLED", timeout=30)
            extra = jobs.start_training(dataset=str(manifest), tool="look", config=LONG)
            assert extra.state in ("QUEUED", "RUNNING")
            with pytest.raises(QueueFullError):  # a resume takes a place too
                jobs.resume(started[-1].id)
        finally:
            _cancel_all(proc.address)


def test_list_jobs_comes_in_pages(rooted: tuple[ServerProcess, Path]) -> None:
    proc, manifest = rooted
    with Client(proc.address, token=TOKEN, retries=0) as client:
        jobs = TrainingClient(client)
        for _ in range(5):
            jobs.cancel(jobs.start_training(dataset=str(manifest), tool="look", config=LONG).id)
        _cancel_all(proc.address)
        everything = [j.id for j in jobs.list_jobs(page_size=LIMITS.max_page_size)]
        assert len(everything) >= 5
        assert [j.id for j in jobs.list_jobs(page_size=2)] == everything  # the client follows the pages
    with grpc.insecure_channel(proc.address) as channel:
        stub, token, paged = _stub(channel), "", []
        while True:
            reply = stub.ListJobs(
                training_pb2.ListJobsRequest(page_size=2, page_token=token), metadata=AUTH, timeout=10
            )
            assert len(reply.jobs) <= 2
            paged += [j.id for j in reply.jobs]
            token = reply.next_page_token
            if not token:
                break
        assert paged == everything
        first = stub.ListJobs(training_pb2.ListJobsRequest(page_size=10**6), metadata=AUTH, timeout=10)
        assert len(first.jobs) == min(len(everything), LIMITS.max_page_size)
        for bad in (training_pb2.ListJobsRequest(page_token="nonsense"), training_pb2.ListJobsRequest(page_size=-1)):
            with pytest.raises(grpc.RpcError) as info:
                stub.ListJobs(bad, metadata=AUTH, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_" in (info.value.details() or "")


def test_a_broken_job_record_is_listed_as_broken_while_the_others_list_fine(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "footage", frames=2, size=32)
    jobs_dir = tmp_path / "jobs"
    args = ("--jobs-dir", str(jobs_dir), "--models-dir", str(tmp_path / "models"))
    proc = start_server(*args)
    try:
        with Client(proc.address, token=TOKEN, retries=0) as client:
            jobs = TrainingClient(client)
            good = [jobs.start_training(dataset=str(manifest), tool="look", config=LONG) for _ in range(3)]
            for job in good:
                jobs.cancel(job.id)
            assert wait_until(lambda: all(jobs.get(j.id).finished for j in good), timeout=60)
    finally:
        proc.stop()
    # What today's main could write (steps 10**30 through config_json), a torn file, a huge one,
    # and one that reads as QUEUED but is not a record this code can trust: none may take the
    # listing down, none may run.
    template = json.loads((jobs_dir / good[0].id / JOB_FILE).read_text())
    broken: dict[str, tuple[str, str]] = {}

    def plant(job_id: str, text: str, reason: str) -> None:
        shutil.copytree(jobs_dir / good[0].id, jobs_dir / job_id)
        (jobs_dir / job_id / JOB_FILE).write_text(text)
        broken[job_id] = (text, reason)

    huge_steps = {**template, "id": "00000000000a", "state": "QUEUED", "config": {**template["config"]}}
    huge_steps["config"]["steps"] = 10**30
    plant("00000000000a", json.dumps(huge_steps), "steps")
    plant("00000000000b", json.dumps(template)[:100], "cannot read job record")
    huge_text = {**template, "id": "00000000000c", "state": "QUEUED", "error": "e" * (3 * MIB)}
    plant("00000000000c", json.dumps(huge_text), "at most 1_048_576 bytes")
    nan_step = {**template, "id": "00000000000d", "state": "INTERRUPTED", "step": 1e300}
    plant("00000000000d", json.dumps(nan_step), "step")
    huge_batch = {**template, "id": "00000000000e", "state": "QUEUED", "config": {**template["config"], "batch": 10**8}}
    plant("00000000000e", json.dumps(huge_batch), "batch")  # would run the server out of memory if resumed

    proc = start_server(*args)
    try:
        with Client(proc.address, token=TOKEN, retries=0) as client:
            jobs = TrainingClient(client)
            listed = {j.id: j for j in jobs.list_jobs()}
            assert {j.id for j in good} <= set(listed)
            assert all(listed[j.id].state == "CANCELLED" for j in good)
            for job_id, (_, reason) in broken.items():
                job = listed[job_id]
                assert job.state == "BROKEN" and reason in job.error and len(job.error) <= 5000, (job_id, job.error)
                assert job.job_dir == str(jobs_dir / job_id)
                with pytest.raises(JobStateError, match="BROKEN"):
                    jobs.resume(job_id)
                assert jobs.cancel(job_id).state == "BROKEN"
                assert list(jobs.watch(job_id))[-1].job.state == "BROKEN"
            # never auto-resumed, never rewritten: nothing trained, the files as they were
            for job_id, (text, _) in broken.items():
                assert (jobs_dir / job_id / JOB_FILE).read_text() == text
                assert not (jobs_dir / job_id / "train" / "model").exists()
            assert jobs.start_training(dataset=str(manifest), tool="look", config=LONG).state in ("QUEUED", "RUNNING")
            _cancel_all(proc.address)
    finally:
        proc.stop()


def test_the_manager_quarantines_a_record_that_read_job_cannot_read(tmp_path: Path) -> None:
    """In process: an unreadable job.json (a folder in its place) is BROKEN, not a crash at start-up."""
    (tmp_path / "jobs" / "0123456789ab" / JOB_FILE).mkdir(parents=True)
    manager = JobManager(tmp_path / "jobs", device="cpu")
    try:
        [job] = manager.list()
        assert job.state == "BROKEN" and "cannot read job record" in job.error
        page, token = manager.page(page_size=1)
        assert [r.id for r in page] == ["0123456789ab"] and token == ""
    finally:
        manager.shutdown()


def test_plateforge_jobs_lists_every_page(
    rooted: tuple[ServerProcess, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from plateforge.cli.main import main

    proc, manifest = rooted
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    with Client(proc.address, token=TOKEN, retries=0) as client:
        jobs = TrainingClient(client)
        while len(jobs.list_jobs(page_size=LIMITS.max_page_size)) <= LIMITS.default_page_size:
            jobs.cancel(jobs.start_training(dataset=str(manifest), tool="look", config=LONG).id)
        _cancel_all(proc.address)
        everything = [j.id for j in jobs.list_jobs(page_size=LIMITS.max_page_size)]
    assert main(["jobs", "--server", proc.address, "--token", TOKEN, "--json"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == everything
    assert main(["jobs", "--server", proc.address, "--token", TOKEN]) == 0
    table = capsys.readouterr().out
    assert all(job_id in table for job_id in everything)
