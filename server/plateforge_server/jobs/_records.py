"""A job as saved on disk: ``jobs_dir/<id>/job.json``, schema ``plateforge.job/1``, written atomically.

::

    {
      "schema": "plateforge.job/1",
      "id": "3f9a0c1b2d4e",            # 12 hex digits, also the folder's name
      "state": "RUNNING",              # QUEUED RUNNING SUCCEEDED FAILED CANCELLED INTERRUPTED
      "tool": "cleanup",
      "dataset": "/show/sh010/dataset.toml",   # absolute manifest path
      "model_version": "",             # "" : the engine's "step<N>"
      "config": {"schema": "plateforge.trainconfig/1", ...},   # TrainConfig.to_dict()
      "step": 120, "steps": 2000, "loss": 0.0123, "val_psnr": 31.2,   # loss/val_psnr may be null
      "error": "",                     # why it FAILED or was INTERRUPTED
      "model_dir": "",                 # the exported model folder once SUCCEEDED
      "created_at": 1718000000.0, "started_at": 1718000001.0, "finished_at": null   # Unix seconds
    }

The training ``out_dir`` (checkpoints, preview.png, loss.png, model/) is ``jobs_dir/<id>/train``;
the dataset as it was checked at submit is ``jobs_dir/<id>/dataset.json``
(:mod:`plateforge_server.datasets.snapshot`). Unknown schemas are refused with the list of known
ones. :func:`read_job` also refuses a record larger than ``max_record_bytes`` or holding a value
outside the bounds of :mod:`._limits` (a record no ListJobs reply could carry); the manager lists
such a job as BROKEN (:meth:`JobRecord.broken`), never runs it, and never writes over it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from plateforge import atomic
from plateforge.errors import UsageError
from plateforge_server.jobs._limits import LIMITS, Limits, check_config, shown
from plateforge_server.training.config import TrainConfig

__all__ = [
    "FINISHED",
    "JOB_FILE",
    "JOB_SCHEMA",
    "KNOWN_JOB_SCHEMAS",
    "TRAIN_FOLDER",
    "JobRecord",
    "JobState",
    "read_job",
    "write_job",
]

JobState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED", "BROKEN"]
#: States a job stays in until someone resumes it (BROKEN: for good).
FINISHED: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED", "BROKEN"})

JOB_SCHEMA: Final = "plateforge.job/1"
KNOWN_JOB_SCHEMAS: Final = (JOB_SCHEMA,)
JOB_FILE: Final = "job.json"
#: The engine's out_dir inside a job's folder.
TRAIN_FOLDER: Final = "train"


@dataclass(frozen=True)
class JobRecord:
    """One job; immutable, replaced (``dataclasses.replace``) on every change."""

    id: str
    state: JobState
    tool: str
    dataset: str
    config: TrainConfig
    job_dir: Path = field(compare=False)
    model_version: str = ""
    step: int = 0
    loss: float | None = None
    val_psnr: float | None = None
    error: str = ""
    model_dir: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def broken(cls, job_dir: Path, reason: str) -> JobRecord:
        """A job whose record cannot be read: listed with ``reason``, never run or written."""
        try:
            created = (job_dir / JOB_FILE).stat().st_mtime
        except OSError:
            created = 0.0
        return cls(
            id=job_dir.name,
            state="BROKEN",
            tool="",
            dataset="",
            config=TrainConfig(),
            job_dir=job_dir,
            error=reason,
            created_at=created,
        )

    @property
    def steps(self) -> int:
        return 0 if self.state == "BROKEN" else self.config.steps

    @property
    def out_dir(self) -> Path:
        return self.job_dir / TRAIN_FOLDER

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": JOB_SCHEMA,
            "id": self.id,
            "state": self.state,
            "tool": self.tool,
            "dataset": self.dataset,
            "model_version": self.model_version,
            "config": self.config.to_dict(),
            "step": self.step,
            "steps": self.steps,
            "loss": self.loss,
            "val_psnr": self.val_psnr,
            "error": self.error,
            "model_dir": self.model_dir,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, job_dir: Path) -> JobRecord:
        """The record :meth:`to_dict` wrote; :class:`UsageError` naming the folder when it is not one."""
        where = job_dir / JOB_FILE
        schema = data.get("schema")
        if schema not in KNOWN_JOB_SCHEMAS:
            known = list(KNOWN_JOB_SCHEMAS)
            raise UsageError(f"{where}: job schema {shown(schema)} is not one this code reads; known: {known}")
        state = data.get("state")
        if state not in get_args(JobState):
            raise UsageError(f"{where}: unknown job state {shown(state)}; known: {list(get_args(JobState))}")
        try:
            return cls(
                id=str(data["id"]),
                state=cast(JobState, state),
                tool=str(data["tool"]),
                dataset=str(data["dataset"]),
                config=TrainConfig.from_dict(data["config"]),
                job_dir=job_dir,
                model_version=str(data.get("model_version", "")),
                step=int(data.get("step", 0)),
                loss=_optional_float(data.get("loss")),
                val_psnr=_optional_float(data.get("val_psnr")),
                error=str(data.get("error", "")),
                model_dir=str(data.get("model_dir", "")),
                created_at=float(data.get("created_at", 0.0)),
                started_at=_optional_float(data.get("started_at")),
                finished_at=_optional_float(data.get("finished_at")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise UsageError(f"{where}: not a valid job record ({type(error).__name__}: {shown(str(error))})") from None


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number or null, got {value!r}")
    return float(value)


def write_job(record: JobRecord) -> None:
    """Write ``job.json`` atomically (a temporary file in the same folder, then a rename). A
    BROKEN record is never written: the damaged file stays as it was, for someone to look at."""
    if record.state == "BROKEN":
        raise UsageError(f"job {record.id} is broken ({record.error}); its record is left as it is")
    record.job_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record.to_dict(), indent=2, allow_nan=False) + "\n"
    atomic.write_text(record.job_dir / JOB_FILE, text, durable=True)


def read_job(job_dir: Path, *, limits: Limits = LIMITS) -> JobRecord:
    """The job saved in ``job_dir``; :class:`UsageError` naming the file when it cannot be read,
    is larger than ``limits.max_record_bytes``, or holds a value outside the job bounds."""
    where = job_dir / JOB_FILE
    try:
        with open(where, "rb") as handle:
            raw = handle.read(limits.max_record_bytes + 1)
        if len(raw) > limits.max_record_bytes:
            raise UsageError(f"{where}: a job record may be at most {limits.max_record_bytes:_} bytes; this is larger")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise UsageError(f"cannot read job record {where}: {shown(str(error))}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a job record is a JSON object")
    record = JobRecord.from_dict(data, job_dir=job_dir)
    _check_bounds(record, where, limits)
    return record


def _check_bounds(record: JobRecord, where: Path, limits: Limits) -> None:
    """A record any reply can carry: the bounds a new job is held to, and its own fields'."""
    try:
        check_config(record.config, limits=limits)
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None
    if record.id != record.job_dir.name:
        raise UsageError(f"{where}: the record's id {shown(record.id)} is not its folder's name")
    if not 0 <= record.step <= record.config.steps:
        raise UsageError(f"{where}: step {shown(record.step)} is not between 0 and the run's {record.config.steps}")
    texts = {
        "tool": (record.tool, limits.max_tool_chars),
        "dataset": (record.dataset, limits.max_dataset_chars),
        "model_version": (record.model_version, 128),
        "model_dir": (record.model_dir, limits.max_dataset_chars),
        "error": (record.error, limits.max_error_chars + 100),
    }
    for name, (text, most) in texts.items():
        if len(text) > most:
            raise UsageError(f"{where}: {name} is {len(text):_} characters; at most {most:_}")
    for name in ("loss", "val_psnr", "created_at", "started_at", "finished_at"):
        value = getattr(record, name)
        if value is not None and not math.isfinite(value):
            raise UsageError(f"{where}: {name} is {value!r}, not a finite number")
