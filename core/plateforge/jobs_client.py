"""Training jobs from the host side: start, watch, cancel, list and resume (plateforge.v1.Training).

:class:`TrainingClient` wraps a connected :class:`~plateforge.client.Client` and uses its channel,
token and retry policy::

    with Client("farm01:50051") as client:
        jobs = TrainingClient(client)
        job = jobs.start_training(dataset="/show/sh010/dataset.toml", tool="cleanup", params={"steps": 2000})
        for event in jobs.watch(job.id):
            print(event.job.step, event.job.loss, event.eta_seconds)

Host-safe: no torch. Jobs run on the server; the dataset path is a path on the server's disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import grpc

from plateforge import codec
from plateforge.client import Client, translate_rpc_error
from plateforge.errors import JobStateError, PlateforgeError, UnknownJobError
from plateforge.models import ParamValue
from plateforge.v1 import training_pb2, training_pb2_grpc

__all__ = [
    "STATES",
    "JobEvent",
    "JobInfo",
    "JobState",
    "JobStateError",
    "TrainingClient",
    "UnknownJobError",
]

T = TypeVar("T")

JobState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED", "BROKEN"]
#: Every state, in the order of the proto's enum. BROKEN: the server cannot read the job's
#: record (``error`` says why); it is listed, never run.
STATES: Final[tuple[JobState, ...]] = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
    "INTERRUPTED",
    "BROKEN",
)
#: States a job stays in until it is resumed (BROKEN: for good).
FINISHED_STATES: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED", "BROKEN"})



@dataclass(frozen=True)
class JobInfo:
    """A training job as the server reports it (see ``Job`` in training.proto)."""

    id: str
    state: JobState
    tool: str
    dataset: str
    step: int
    steps: int
    loss: float
    val_psnr: float | None
    error: str
    model_dir: str
    job_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    config: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class JobEvent:
    """One update from :meth:`TrainingClient.watch`."""

    job: JobInfo
    state_changed: bool
    lr: float
    eta_seconds: float | None
    #: PNG bytes of the latest preview when one was due; b"" otherwise.
    preview_png: bytes
    #: PNG bytes of the latest loss chart when one was due; b"" otherwise.
    loss_png: bytes = b""


def job_from_proto(msg: training_pb2.Job) -> JobInfo:
    state = training_pb2.Job.State.Name(msg.state).removeprefix("STATE_")
    if state not in STATES:
        raise PlateforgeError(f"the server reported job {msg.id} in an unknown state {state!r}")
    try:
        config = json.loads(msg.config_json) if msg.config_json else {}
    except ValueError:
        config = {}
    return JobInfo(
        id=msg.id,
        state=state,
        tool=msg.tool,
        dataset=msg.dataset,
        step=msg.step,
        steps=msg.steps,
        loss=msg.loss,
        val_psnr=msg.val_psnr if msg.HasField("val_psnr") else None,
        error=msg.error,
        model_dir=msg.model_dir,
        job_dir=msg.job_dir,
        created_at=msg.created_at,
        started_at=msg.started_at or None,
        finished_at=msg.finished_at or None,
        config=config if isinstance(config, dict) else {},
    )


def event_from_proto(msg: training_pb2.JobEvent) -> JobEvent:
    return JobEvent(
        job=job_from_proto(msg.job),
        state_changed=msg.state_changed,
        lr=msg.lr,
        eta_seconds=msg.eta_seconds if msg.HasField("eta_seconds") else None,
        preview_png=msg.preview_png,
        loss_png=msg.loss_png,
    )


class TrainingClient:
    """The Training service through ``client``'s channel, token, deadline and retries."""

    def __init__(self, client: Client) -> None:
        self._client = client
        stub = training_pb2_grpc.TrainingStub(client.channel)  # type: ignore[no-untyped-call]
        self._start = stub.StartTraining
        self._watch = stub.WatchJob
        self._cancel = stub.CancelJob
        self._list = stub.ListJobs
        self._resume = stub.ResumeJob

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self._client.metadata

    def _unary(self, method: Callable[..., T], request: object) -> T:
        def call() -> T:
            return method(request, timeout=self._client.timeout, metadata=self._metadata)

        return self._client.call_with_retries(call)

    def start_training(
        self,
        *,
        dataset: str,
        tool: str,
        params: Mapping[str, ParamValue] | None = None,
        config: Mapping[str, Any] | None = None,
        model_name: str = "",
        model_version: str = "",
    ) -> JobInfo:
        """Queue a job training a ``tool`` model on the manifest ``dataset`` (a path on the
        server). ``config`` and ``params`` set TrainConfig fields (``params`` last). Refused
        before any job exists for a bad config (UsageError) or unlicensed material (LicenceError
        naming the files)."""
        request = training_pb2.StartTrainingRequest(
            dataset=dataset,
            tool=tool,
            config_json=json.dumps(dict(config)) if config else "",
            params={k: codec.param_to_proto(v) for k, v in (params or {}).items()},
            model_name=model_name,
            model_version=model_version,
        )
        return job_from_proto(self._unary(self._start, request))

    def cancel(self, job_id: str) -> JobInfo:
        """Ask a job to stop; it checkpoints and ends CANCELLED (watch it to see when)."""
        return job_from_proto(self._unary(self._cancel, training_pb2.CancelJobRequest(id=job_id)))

    def resume(self, job_id: str) -> JobInfo:
        """Queue an INTERRUPTED, CANCELLED or FAILED job again, from its last checkpoint."""
        return job_from_proto(self._unary(self._resume, training_pb2.ResumeJobRequest(id=job_id)))

    def list_jobs(self, *, page_size: int = 0) -> list[JobInfo]:
        """Every job on the server, oldest first, fetched a page at a time (``page_size`` jobs a
        call; 0: the server's default)."""
        return list(self.iter_jobs(page_size=page_size))

    def iter_jobs(self, *, page_size: int = 0) -> Iterator[JobInfo]:
        """Every job on the server, oldest first, one ListJobs page at a time as they are used."""
        token = ""
        seen: set[str] = set()
        while True:
            request = training_pb2.ListJobsRequest(page_size=page_size, page_token=token)
            reply = self._unary(self._list, request)
            for message in reply.jobs:
                yield job_from_proto(message)
            seen.add(token)
            if not reply.next_page_token or reply.next_page_token in seen:
                return  # the last page (a token seen before would loop forever: a server bug)
            token = reply.next_page_token

    def get(self, job_id: str) -> JobInfo:
        for job in self.iter_jobs():
            if job.id == job_id:
                return job
        raise UnknownJobError(f"no job {job_id!r} on {self._client.address}")

    def watch(self, job_id: str, *, preview_interval: float = 0.0) -> Iterator[JobEvent]:
        """Events of one job until it finishes: first its current state, then every step and
        state change. No deadline. A dropped connection is re-established (the client's retries,
        with backoff; the server sends the current state again). Closing the iterator detaches
        without cancelling the job."""
        request = training_pb2.WatchJobRequest(id=job_id, preview_interval_seconds=preview_interval)
        attempt = 0
        while True:
            call = self._watch(request, metadata=self._metadata)
            try:
                for message in call:
                    attempt = 0
                    event = event_from_proto(message)
                    yield event
                    if event.state_changed and event.job.finished:
                        return
                return
            except grpc.RpcError as error:
                if not self._client.pause_before_retry(error, attempt):
                    raise translate_rpc_error(error, self._client.address) from None
                attempt += 1
            finally:
                call.cancel()  # type: ignore[no-untyped-call,unused-ignore]
