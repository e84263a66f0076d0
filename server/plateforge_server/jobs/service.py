"""The plateforge.v1.Training service: StartTraining, WatchJob, CancelJob, ListJobs, ResumeJob.

Handlers only translate between protobuf and :class:`~plateforge_server.jobs.JobManager`; errors
are PlateforgeError subclasses that the interceptor turns into status codes. A WatchJob stream
that the caller closes (or whose connection drops) closes its watcher; the job keeps running.

The server is asyncio (server/plateforge_server/app.py): WatchJob is a coroutine that waits for each event on the
``waiting`` executor, never on the event loop; the other handlers are plain functions, which the
interceptor runs on a thread pool of their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from plateforge import codec
from plateforge.v1 import training_pb2, training_pb2_grpc
from plateforge_server.fields import check_json_depth
from plateforge_server.interceptors import when_done
from plateforge_server.jobs._manager import JobEvent, JobManager
from plateforge_server.jobs._records import JobRecord
from plateforge_server.training.pictures import LOSS_FILE, PREVIEW_FILE

__all__ = ["TRAINING_SERVICE_NAME", "TrainingService", "add_training_service", "job_to_proto"]

TRAINING_SERVICE_NAME = training_pb2.DESCRIPTOR.services_by_name["Training"].full_name



def job_to_proto(record: JobRecord) -> training_pb2.Job:
    if record.state == "BROKEN":  # a record that could not be read: only what is known
        state = training_pb2.Job.STATE_BROKEN
        return training_pb2.Job(id=record.id, state=state, error=record.error, job_dir=str(record.job_dir))
    msg = training_pb2.Job(
        id=record.id,
        state=f"STATE_{record.state}",
        tool=record.tool,
        dataset=record.dataset,
        step=record.step,
        steps=record.steps,
        loss=record.loss or 0.0,
        error=record.error,
        model_dir=record.model_dir,
        job_dir=str(record.job_dir),
        created_at=record.created_at,
        started_at=record.started_at or 0.0,
        finished_at=record.finished_at or 0.0,
        config_json=json.dumps(record.config.to_dict(), sort_keys=True),
    )
    if record.val_psnr is not None:
        msg.val_psnr = record.val_psnr
    return msg


class _Previews:
    """The pictures (preview.png, loss.png) for one watcher: at most once per ``interval``
    seconds, each only when it changed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sent_at = -float("inf")
        self.sent_mtime: dict[str, int] = {}

    def due(self, record: JobRecord, *, force: bool = False) -> dict[str, bytes]:
        """File name -> its bytes, for the pictures due now."""
        if self.interval <= 0:
            return {}
        now = time.monotonic()
        if not force and now - self.sent_at < self.interval:
            return {}
        due = {}
        for name in (PREVIEW_FILE, LOSS_FILE):
            path = record.out_dir / name
            try:
                mtime = path.stat().st_mtime_ns
                if mtime != self.sent_mtime.get(name):
                    due[name] = path.read_bytes()  # written atomically by the engine
                    self.sent_mtime[name] = mtime
            except OSError:
                continue
        if due:
            self.sent_at = now
        return due


def _event_to_proto(event: JobEvent, pictures: dict[str, bytes]) -> training_pb2.JobEvent:
    msg = training_pb2.JobEvent(
        job=job_to_proto(event.job),
        state_changed=event.state_changed,
        lr=event.lr,
        preview_png=pictures.get(PREVIEW_FILE, b""),
        loss_png=pictures.get(LOSS_FILE, b""),
    )
    if event.eta_seconds is not None:
        msg.eta_seconds = event.eta_seconds
    return msg


class TrainingService:
    def __init__(self, manager: JobManager, *, waiting: Executor, data_roots: tuple[Path, ...] = ()) -> None:
        self.manager = manager
        #: Where WatchJob streams wait for their next event (one thread each while they wait).
        self.waiting = waiting
        #: Folders a dataset manifest and its files must lie in (server/plateforge_server/roots.py); empty: anywhere.
        self.data_roots = data_roots

    def StartTraining(
        self, request: training_pb2.StartTrainingRequest, context: grpc.ServicerContext
    ) -> training_pb2.Job:
        check_json_depth(request.config_json, "StartTrainingRequest.config_json")
        record = self.manager.start(  # every check (bounds, roots, licences) is the manager's
            dataset=request.dataset,
            tool=request.tool,
            config_json=request.config_json,
            params={k: codec.param_from_proto(v) for k, v in request.params.items()},
            model_name=request.model_name,
            model_version=request.model_version,
            data_roots=self.data_roots,
        )
        return job_to_proto(record)

    async def WatchJob(
        self, request: training_pb2.WatchJobRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[training_pb2.JobEvent]:
        previews = _Previews(request.preview_interval_seconds)
        loop = asyncio.get_running_loop()
        with self.manager.watch(request.id) as watcher:
            when_done(context, watcher.close)
            events = iter(watcher)
            while (event := await loop.run_in_executor(self.waiting, next, events, None)) is not None:
                final = event.state_changed and event.job.finished
                yield _event_to_proto(event, previews.due(event.job, force=final))

    def CancelJob(self, request: training_pb2.CancelJobRequest, context: grpc.ServicerContext) -> training_pb2.Job:
        return job_to_proto(self.manager.cancel(request.id))

    def ListJobs(
        self, request: training_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> training_pb2.ListJobsResponse:
        page, next_token = self.manager.page(page_size=request.page_size, page_token=request.page_token)
        return training_pb2.ListJobsResponse(jobs=[job_to_proto(r) for r in page], next_page_token=next_token)

    def ResumeJob(self, request: training_pb2.ResumeJobRequest, context: grpc.ServicerContext) -> training_pb2.Job:
        return job_to_proto(self.manager.resume(request.id))


def add_to_server(service: TrainingService, server: aio.Server) -> None:
    """Register ``service`` as plateforge.v1.Training, through the generated stubs."""
    training_pb2_grpc.add_TrainingServicer_to_server(service, server)  # type: ignore[no-untyped-call]


def add_training_service(
    server: aio.Server,
    *,
    jobs_dir: Path,
    waiting: Executor,
    device: str,
    auto_resume: bool = True,
    publish: Callable[[Path], Path] | None = None,
    data_roots: tuple[Path, ...] = (),
) -> JobManager:
    """Start a :class:`JobManager` on ``jobs_dir`` (recovering the jobs found there) and serve it
    as plateforge.v1.Training on ``server``. ``publish`` puts each finished model where the
    server serves it from. Call the manager's ``shutdown()`` when the server stops."""
    manager = JobManager(jobs_dir, device=device, auto_resume=auto_resume, publish=publish)
    add_to_server(TrainingService(manager, waiting=waiting, data_roots=data_roots), server)
    return manager
