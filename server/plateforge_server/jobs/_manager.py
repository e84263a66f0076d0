"""JobManager: training jobs on disk, one FIFO worker per device, progress fanned out to watchers.

* **State on disk.** Every change to a job is written to ``jobs_dir/<id>/job.json`` (see
  :mod:`._records`) before anyone is told about it; progress is written at most every
  ``save_interval`` seconds. The engine's out_dir is ``jobs_dir/<id>/train``.
* **One job at a time.** A worker thread takes job ids from a FIFO queue; the others wait QUEUED.
* **Watchers.** :meth:`JobManager.watch` returns a :class:`Watcher` whose first event is the job as
  it stands; then one event per step and per state change. A slow watcher loses step events (never
  state changes); a closed one is dropped.
* **Cancel.** A running job's cancel flag is the engine's ``cancelled()``: the engine checkpoints
  and raises :class:`~plateforge.errors.CancelledError`, and the job ends CANCELLED. A queued one
  ends CANCELLED at once.
* **Bounds.** A job is checked against :mod:`._limits` before it exists (every config field, the
  request's sizes, the memory of one step); at most ``limits.max_queued`` jobs wait or run, more
  is :class:`~plateforge.errors.QueueFullError` (RESOURCE_EXHAUSTED). :meth:`JobManager.page`
  lists them a page at a time.
* **The dataset as checked.** :meth:`JobManager.start` keeps a snapshot of the manifest and its
  files (:mod:`plateforge_server.datasets.snapshot`), quickly, hashing nothing; the job's first
  phase hashes the footage (cancellable); every run checks the manifest is unchanged and trains
  only from the snapshot, so a manifest or file changed after the job was queued fails it,
  naming the file, and no model is published.
* **Restart recovery.** A new manager reads every job folder. A record that cannot be read (or
  holds values outside the bounds) is listed BROKEN with the reason and left as it is on disk.
  Jobs left RUNNING (the server died) become INTERRUPTED. With ``auto_resume`` (the default) the
  INTERRUPTED and QUEUED ones are queued again, oldest first, and the engine resumes each from
  its newest checkpoint; without it, QUEUED ones become INTERRUPTED too and wait for
  :meth:`JobManager.resume`.
* **Shutdown.** :meth:`JobManager.shutdown` stops the running job the way a cancel does, but
  records it INTERRUPTED, so the next manager resumes it.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import logging
import math
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateforge.errors import (
    CancelledError,
    JobStateError,
    PlateforgeError,
    QueueFullError,
    UnknownJobError,
    UsageError,
)
from plateforge.manifest_format import Manifest, parse_manifest
from plateforge.models import ParamValue
from plateforge_server.datasets.snapshot import (
    check_manifest_unchanged,
    hash_footage,
    read_snapshot,
    take_snapshot,
    write_snapshot,
)
from plateforge_server.jobs._limits import LIMITS, Limits, check_config, check_override, shown
from plateforge_server.jobs._paging import page_of
from plateforge_server.jobs._records import JOB_FILE, JobRecord, JobState, read_job, write_job
from plateforge_server.roots import check_all_inside, check_model_name, inside_roots
from plateforge_server.status.metrics import ServerMetrics
from plateforge_server.training import TrainConfig, TrainProgress, TrainResult, net_config_for, train
from plateforge_server.training.config import with_mode_defaults
from plateforge_server.training.initial import check_parent
from plateforge_server.training.roles import check_roles_fit

__all__ = ["JobEvent", "JobManager", "Watcher", "build_config"]

log = logging.getLogger("plateforge_server.jobs")

#: Step events a watcher may fall behind by before older ones are dropped.
WATCHER_BACKLOG = 256


@dataclass(frozen=True)
class JobEvent:
    """One update: the job after it, whether its state changed, and the step's lr and ETA."""

    job: JobRecord
    state_changed: bool
    lr: float = 0.0
    eta_seconds: float | None = None


class Watcher:
    """A subscription to one job's events. Iterate it; it ends after the job finishes or on
    :meth:`close` (from any thread). Use as a context manager so it is always unsubscribed."""

    def __init__(self, manager: JobManager, job_id: str) -> None:
        self._manager = manager
        self.job_id = job_id
        self._queue: queue.Queue[JobEvent | None] = queue.Queue()
        self._pending_steps = 0
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def _put(self, event: JobEvent) -> None:
        with self._lock:
            if not event.state_changed:
                if self._pending_steps >= WATCHER_BACKLOG:
                    return  # a slow watcher loses step events, never state changes
                self._pending_steps += 1
        self._queue.put(event)

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._queue.put(None)
            self._manager._unsubscribe(self)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JobEvent]:
        return self.events()

    def events(self, *, poll: float = 0.5) -> Iterator[JobEvent]:
        """Events until the job finishes or the watcher is closed."""
        while not self.closed.is_set():
            try:
                event = self._queue.get(timeout=poll)
            except queue.Empty:
                continue
            if event is None:
                return
            if not event.state_changed:
                with self._lock:
                    self._pending_steps -= 1
            yield event
            if event.state_changed and event.job.finished:
                return


def build_config(
    *,
    tool: str,
    config_json: str = "",
    params: Mapping[str, ParamValue] | None = None,
    model_name: str = "",
    device: str = "auto",
    limits: Limits = LIMITS,
) -> TrainConfig:
    """The TrainConfig of a StartTraining request: defaults, then ``config_json``, then ``params``;
    ``tool`` "cleanup" means mode "cleanup" (the temporally guided paint-out) and "matte" mode
    "matte" (few-shot matting on keyframe mattes) unless a mode is given; ``device`` always wins.
    Every value, given or default, is held to its bound (:mod:`._limits`) before the config exists."""
    if not tool.strip():
        raise UsageError("StartTraining needs a tool (cleanup, look, matte, relight ...)")
    if len(tool) > limits.max_tool_chars:
        raise UsageError(f"tool must be at most {limits.max_tool_chars} characters, got {shown(tool)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides: dict[str, Any] = {}
    if config_json.strip():
        if len(config_json.encode("utf-8", "surrogatepass")) > limits.max_config_json_bytes:
            raise UsageError(
                f"config_json must be at most {limits.max_config_json_bytes:_} bytes, "
                f"got {len(config_json):_} characters"
            )
        try:
            given = json.loads(config_json)
        except (ValueError, RecursionError) as error:
            raise UsageError(f"config_json is not valid JSON: {shown(str(error))}") from None
        if not isinstance(given, dict):
            raise UsageError("config_json must be a JSON object of TrainConfig fields")
        given.pop("schema", None)
        overrides.update(given)
    overrides.update(params or {})
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UsageError(f"training config: unknown field(s) {shown(unknown)}; known fields: {sorted(fields)}")
    values: dict[str, Any] = {k: check_override(k, v) for k, v in overrides.items()}
    values.setdefault("mode", {"cleanup": "cleanup", "matte": "matte", "generative-fill": "lora"}.get(tool, "pairs"))
    values["tool"] = tool  # before the defaults: they are per tool (relight and look differ from "pairs")
    values = with_mode_defaults(values)
    if model_name:
        values["name"] = model_name
    values["device"] = device
    return check_config(TrainConfig(**values), limits=limits)


def _cut(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters, saying how much was cut."""
    if len(text) <= most:
        return text
    return f"{text[:most]}… ({len(text) - most:_} more characters)"


class JobManager:
    """Training jobs under ``jobs_dir`` on one ``device``; see the module doc."""

    def __init__(
        self,
        jobs_dir: Path,
        *,
        device: str = "auto",
        auto_resume: bool = True,
        save_interval: float = 2.0,
        start: bool = True,
        publish: Callable[[Path], Path] | None = None,
        limits: Limits = LIMITS,
    ) -> None:
        self.jobs_dir = Path(jobs_dir)
        #: The bounds jobs are held to (queue length, page sizes, record sizes, config fields).
        self.limits = limits
        #: Called with a finished job's exported model folder; returns where the model is served
        #: from (the server copies it into its models directory). A failure fails the job.
        self.publish = publish
        self.device = device
        self.save_interval = save_interval
        self._lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}
        self._watchers: dict[str, list[Watcher]] = {}
        self._queue: deque[str] = deque()
        self._wake = threading.Condition(self._lock)
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = threading.Event()
        self._last_saved: dict[str, float] = {}
        #: Where training pace is reported (the server's /metrics); None: nowhere.
        self.metrics: ServerMetrics | None = None
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._recover(auto_resume)
        self._worker = threading.Thread(target=self._run, name="plateforge-jobs", daemon=True)
        if start:
            self._worker.start()

    # -- recovery ---------------------------------------------------------------------------------

    def _recover(self, auto_resume: bool) -> None:
        found: list[JobRecord] = []
        for folder in sorted(p for p in self.jobs_dir.iterdir() if (p / JOB_FILE).exists()):
            try:
                found.append(read_job(folder, limits=self.limits))
            except Exception as error:  # anything on disk: quarantined, never fatal to the listing
                reason = str(error) if isinstance(error, PlateforgeError) else f"{type(error).__name__}: {error}"
                reason = _cut(reason, self.limits.max_error_chars)
                log.warning("job folder %s is broken, listed as such and never run: %s", folder, reason)
                found.append(JobRecord.broken(folder, reason))
        for record in sorted(found, key=lambda r: (r.created_at, r.id)):
            if record.state == "BROKEN":
                self._jobs[record.id] = record
                continue
            if record.state == "RUNNING" or (record.state == "QUEUED" and not auto_resume):
                what = "ran" if record.state == "RUNNING" else "waited"
                record = dataclasses.replace(
                    record,
                    state="INTERRUPTED",
                    error=f"the server stopped while the job {what} (at step {record.step} of {record.steps})",
                    finished_at=time.time(),
                )
                write_job(record)
            self._jobs[record.id] = record
            if auto_resume and record.state in ("INTERRUPTED", "QUEUED"):
                self._enqueue(record)
        if found:
            log.info("jobs: %d found in %s, %d queued", len(found), self.jobs_dir, len(self._queue))

    # -- public API -------------------------------------------------------------------------------

    def start(
        self,
        *,
        dataset: str | Path,
        tool: str,
        config_json: str = "",
        params: Mapping[str, ParamValue] | None = None,
        model_name: str = "",
        model_version: str = "",
        data_roots: tuple[Path, ...] = (),
    ) -> JobRecord:
        """Check the request, the config and the dataset, then queue a job; quick (the footage
        is hashed by the job, not here). Refuses early, creating no job: :class:`UsageError` for a
        value outside its bound (:mod:`._limits`), :class:`~plateforge.errors.ManifestError` for
        a bad manifest, :class:`~plateforge.errors.PathNotAllowedError` for a manifest, file or
        base model outside ``data_roots`` (when given), :class:`~plateforge.errors.LicenceError`
        naming every file that may not be trained on, :class:`QueueFullError` when
        ``limits.max_queued`` jobs wait or run. (Material that changes after this check fails
        the job, naming the file.)"""
        limits = self.limits
        dataset = str(dataset)
        if len(dataset) > limits.max_dataset_chars or "\0" in dataset or not dataset.strip():
            raise UsageError(
                f"dataset must be a manifest path of at most {limits.max_dataset_chars} characters, without NUL; "
                f"got {shown(dataset)}"
            )
        check_model_name(model_name[:200], "model name")
        check_model_name(model_version[:200], "model version")
        config = build_config(
            tool=tool,
            config_json=config_json,
            params=params,
            model_name=model_name,
            device=self.device,
            limits=limits,
        )
        self._check_queue_room()
        if data_roots and config.base_model:  # "lora" mode reads a base model folder: inside the roots too
            folder = inside_roots(config.base_model, data_roots, "base model folder")
            check_all_inside(sorted(folder.rglob("*")), data_roots, "base model files")
        if config.init:  # a fine-tune: the parent inside the roots, and one this run can start from
            if data_roots:
                parent = inside_roots(config.init, data_roots, "init model folder")
                check_all_inside(sorted(parent.rglob("*")), data_roots, "init model files")
            check_parent(config, net_config_for(config))
        snapshot = take_snapshot(
            dataset,
            data_roots=data_roots,
            max_manifest_bytes=limits.max_manifest_bytes,
            max_files=limits.max_dataset_files,
        )
        manifest = Path(snapshot.manifest_path)
        # A dataset whose roles cannot feed the tool's mode (a typo'd tool name trains pairs) is
        # refused now, not after queueing with an unrelated pairing error.
        check_roles_fit(config, parse_manifest(snapshot.manifest_text, path=manifest))
        with self._lock:
            if self._stopping.is_set():
                raise JobStateError("the server is shutting down; no new jobs")
            self._check_queue_room()
            job_id = secrets.token_hex(6)
            while job_id in self._jobs or (self.jobs_dir / job_id).exists():
                job_id = secrets.token_hex(6)
            record = JobRecord(
                id=job_id,
                state="QUEUED",
                tool=tool,
                dataset=str(manifest),
                config=config,
                job_dir=self.jobs_dir / job_id,
                model_version=model_version,
                created_at=time.time(),
            )
            write_snapshot(snapshot, record.job_dir)
            write_job(record)
            self._jobs[job_id] = record
            self._enqueue(record)
        log.info("job %s queued: %s on %s, %d steps", job_id, tool, manifest, config.steps)
        return record

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise UnknownJobError(f"no job {job_id!r} on this server; it has {len(self._jobs)} job(s)")
            return record

    def list(self) -> list[JobRecord]:
        """Every job, oldest first (BROKEN ones too)."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda r: (r.created_at, r.id))

    def page(self, *, page_size: int = 0, page_token: str = "") -> tuple[builtins.list[JobRecord], str]:
        """One page of :meth:`list` and the token of the next ("" after the last); see :mod:`._paging`."""
        return page_of(self.list(), page_size=page_size, page_token=page_token, limits=self.limits)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job now, or ask a running one to checkpoint and stop (its state turns
        CANCELLED when it has); a finished job is returned as it is."""
        with self._lock:
            record = self.get(job_id)
            if record.state == "QUEUED":
                with_state = dataclasses.replace(record, state="CANCELLED", finished_at=time.time())
                self._remove_from_queue(job_id)
                self._update(with_state, state_changed=True)
                return with_state
            if record.state == "RUNNING":
                self._cancel.setdefault(job_id, threading.Event()).set()
            return record

    def resume(self, job_id: str) -> JobRecord:
        """Queue an INTERRUPTED, CANCELLED or FAILED job again; it continues from its newest checkpoint."""
        with self._lock:
            record = self.get(job_id)
            if record.state not in ("INTERRUPTED", "CANCELLED", "FAILED"):
                raise JobStateError(
                    f"job {job_id} is {record.state}; only INTERRUPTED, CANCELLED or FAILED jobs can be resumed"
                )
            if self._stopping.is_set():
                raise JobStateError("the server is shutting down; no jobs are resumed")
            self._check_queue_room()
            self._enqueue(record)
            return self._jobs[job_id]

    def watch(self, job_id: str) -> Watcher:
        """A watcher whose first event is the job as it stands now."""
        with self._lock:
            record = self.get(job_id)
            watcher = Watcher(self, job_id)
            watcher._put(JobEvent(record, state_changed=True))
            if not record.finished:
                self._watchers.setdefault(job_id, []).append(watcher)
            return watcher

    def wait(self, job_id: str, *, timeout: float | None = None) -> JobRecord:
        """Block until the job is in a finished state (or ``timeout`` passes); the job then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while not self.get(job_id).finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._wake.wait(timeout=left)
            return self.get(job_id)

    def shutdown(self, *, timeout: float = 60.0) -> None:
        """Stop taking jobs; the running one checkpoints and is recorded INTERRUPTED (the next
        manager on this jobs_dir resumes it); queued ones stay QUEUED on disk. Watchers are closed."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout)
        with self._lock:
            watchers = [w for ws in self._watchers.values() for w in ws]
        for watcher in watchers:
            watcher.close()

    # -- internals ----------------------------------------------------------------------------------

    def _check_queue_room(self) -> None:
        with self._lock:
            waiting = sum(1 for r in self._jobs.values() if r.state in ("QUEUED", "RUNNING"))
            if waiting >= self.limits.max_queued:
                raise QueueFullError(
                    f"the training queue is full: {waiting} job(s) queued or running, at most "
                    f"{self.limits.max_queued}; try again once some have finished"
                )

    def _enqueue(self, record: JobRecord) -> None:
        with self._wake:
            queued = dataclasses.replace(record, state="QUEUED", error="", finished_at=None)
            self._cancel.pop(record.id, None)
            if record.id not in self._queue:
                self._queue.append(record.id)
            if record.state != "QUEUED" or record.id not in self._jobs:
                self._update(queued, state_changed=True)
            else:
                self._jobs[record.id] = queued
            self._wake.notify_all()

    def _remove_from_queue(self, job_id: str) -> None:
        with contextlib.suppress(ValueError):
            self._queue.remove(job_id)

    def _unsubscribe(self, watcher: Watcher) -> None:
        with self._lock:
            watchers = self._watchers.get(watcher.job_id, [])
            if watcher in watchers:
                watchers.remove(watcher)
            if not watchers:
                self._watchers.pop(watcher.job_id, None)

    def _update(
        self, record: JobRecord, *, state_changed: bool, lr: float = 0.0, eta: float | None = None, save: bool = True
    ) -> None:
        """Record ``record``, write it to disk (when ``save``), and tell the job's watchers."""
        with self._wake:
            self._jobs[record.id] = record
            if save:
                write_job(record)
                self._last_saved[record.id] = time.monotonic()
            event = JobEvent(record, state_changed=state_changed, lr=lr, eta_seconds=eta)
            watchers = list(self._watchers.get(record.id, []))
            if state_changed and record.finished:
                self._watchers.pop(record.id, None)
            if state_changed:
                self._wake.notify_all()
        for watcher in watchers:
            if not watcher.closed.is_set():
                watcher._put(event)
        if state_changed and record.state != "RUNNING" and self.metrics is not None:
            self.metrics.training_ended(record.id, record.tool)

    def _next(self) -> JobRecord | None:
        with self._wake:
            while not self._stopping.is_set():
                while self._queue:
                    record = self._jobs[self._queue.popleft()]
                    if record.state == "QUEUED":
                        running = dataclasses.replace(record, state="RUNNING", started_at=time.time(), error="")
                        self._cancel[record.id] = threading.Event()
                        self._update(running, state_changed=True)
                        return running
                self._wake.wait()
            return None

    def _run(self) -> None:
        while True:
            record = self._next()
            if record is None:
                return
            try:
                self._train(record)
            except Exception:  # the worker must survive anything one job does
                log.exception("job %s: unexpected error in the job worker", record.id)

    def _train(self, record: JobRecord) -> None:
        cancel = self._cancel[record.id]
        log.info("job %s started", record.id)

        def cancelled() -> bool:
            return cancel.is_set() or self._stopping.is_set()

        def progress(p: TrainProgress) -> None:
            current = self.get(record.id)
            loss = p.loss if math.isfinite(p.loss) else None
            psnr = p.val_psnr if p.val_psnr is not None and math.isfinite(p.val_psnr) else None
            updated = dataclasses.replace(current, step=p.step, loss=loss, val_psnr=psnr)
            due = time.monotonic() - self._last_saved.get(record.id, 0.0) >= self.save_interval
            self._update(updated, state_changed=False, lr=p.lr, eta=p.eta_seconds, save=due)
            if self.metrics is not None:
                self.metrics.training_step(record.id, record.tool, p.step, p.seconds)

        try:
            dataset = self._checked_dataset(record, cancelled)
            result = train(
                record.config,
                manifest_path=dataset,
                out_dir=record.out_dir,
                progress=progress,
                cancelled=cancelled,
            )
            model_dir = self._finish_model(record, result)
            if self.publish is not None:
                model_dir = self.publish(model_dir)
        except CancelledError as error:
            interrupted = self._stopping.is_set() and not cancel.is_set()
            state: JobState = "INTERRUPTED" if interrupted else "CANCELLED"
            message = f"the server stopped: {error}" if interrupted else str(error)
            self._end(record.id, state, error=message)
            return
        except PlateforgeError as error:
            self._end(record.id, "FAILED", error=str(error))
            return
        except Exception as error:
            log.exception("job %s failed", record.id)
            self._end(record.id, "FAILED", error=f"internal error: {type(error).__name__}: {error}")
            return
        current = self.get(record.id)
        finished = dataclasses.replace(
            current,
            state="SUCCEEDED",
            step=result.steps,
            loss=result.final_loss if math.isfinite(result.final_loss) else None,
            val_psnr=result.val_psnr if math.isfinite(result.val_psnr) else None,
            model_dir=str(model_dir),
            error="",
            finished_at=time.time(),
        )
        self._update(finished, state_changed=True)
        log.info("job %s succeeded: %s", record.id, model_dir)

    def _checked_dataset(self, record: JobRecord, cancelled: Callable[[], bool]) -> Manifest:
        """The job's first phase: the manifest unchanged since submit, the footage hashed (once,
        saved with the snapshot); the manifest to train from (the snapshot's, every hash recorded)."""
        snapshot = read_snapshot(record.job_dir)
        check_manifest_unchanged(snapshot, max_manifest_bytes=self.limits.max_manifest_bytes)
        if not snapshot.hashed:
            log.info("job %s: hashing %d footage file(s)", record.id, len(snapshot.files))
            snapshot = hash_footage(snapshot, cancelled=cancelled)
            write_snapshot(snapshot, record.job_dir)
        return snapshot.manifest()

    def _finish_model(self, record: JobRecord, result: TrainResult) -> Path:
        """The exported model folder, re-versioned when the job asked for a version."""
        if record.model_version:
            from plateforge_server.modelcard import load_card, load_weights, save_model

            card = load_card(result.model_dir)
            if card.version != record.model_version:
                tensors = load_weights(result.model_dir)
                versioned = dataclasses.replace(card, version=record.model_version)
                save_model(result.model_dir, tensors=tensors, card=versioned)
        return result.model_dir

    def _end(self, job_id: str, state: JobState, *, error: str) -> None:
        current = self.get(job_id)
        log.info("job %s %s: %s", job_id, state.lower(), error)
        error = _cut(error, self.limits.max_error_chars)
        ended = dataclasses.replace(current, state=state, error=error, finished_at=time.time())
        self._update(ended, state_changed=True)
        self._cancel.pop(job_id, None)
