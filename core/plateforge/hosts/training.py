"""A host's train panel (CopyCat-style) without the host: keyframes to a licensed dataset, a job
on the server, its loss and preview as they come, cancel and resume.

The host renders its input and ground-truth nodes at the keyframes into a
:class:`KeyframeDataset` folder (``input/input.####.exr``, ``target/target.####.exr``), then
:func:`start_job` writes the dataset's licence manifest (``plateforge.dataset/1``, one source per
keyframe file, roles ``input`` and ``target``) and queues the job through
:class:`~plateforge.jobs_client.TrainingClient`, exactly as ``plateforge train --dataset`` does.
The server checks the manifest, licence included, and refuses it naming the files. A
:class:`TrainingMonitor` follows the job on a :class:`~plateforge.hosts.worker.BackgroundTask`:
loss curve, the latest preview and loss-chart PNGs as WatchJob streams them (written atomically
beside the dataset, ``preview.png`` and ``loss.png``, for a host's Read node or image), and a
status line. A finished job's model is published by the server and is in ``list_models`` at once.

The folder must be one the server can read (the same machine, or shared storage).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from plateforge import atomic, manifests
from plateforge.cli.job import describe
from plateforge.client import Client
from plateforge.errors import PlateforgeError, UsageError
from plateforge.exr import StrPath
from plateforge.hosts.worker import BackgroundTask, ProgressUpdate, TaskContext
from plateforge.jobs_client import JobEvent, JobInfo, TrainingClient
from plateforge.models import ParamValue
from plateforge.sequences import frame_path, parse_frames

__all__ = [
    "ARTIST_ROLES",
    "ENV_ARTIST",
    "MANIFEST_SCHEMA",
    "SIZES",
    "TRAINABLE_TOOLS",
    "KeyframeDataset",
    "TrainingMonitor",
    "TrainingRequest",
    "artist_name",
    "parse_keyframes",
    "start_job",
    "watch_in_background",
    "write_manifest",
]

#: The dataset manifest schema written (read by the server's plateforge_server.datasets).
MANIFEST_SCHEMA: Final = manifests.MANIFEST_SCHEMA
#: Tools a train panel offers: each learns input -> ground truth pairs.
TRAINABLE_TOOLS: Final = ("look", "relight", "matte")
#: The net sizes the server's trainer knows.
SIZES: Final = ("small", "medium", "large")
#: The variable naming the artist credited for the keyframes a train panel sends, when the host's
#: preference is empty (a name or a studio id).
ENV_ARTIST: Final = "PLATEFORGE_ARTIST"
#: What the artist did to the target keyframes, by tool: their credit's role in the manifest.
ARTIST_ROLES: Final = {"look": "grade", "relight": "relight", "matte": "keyframe matte"}


def artist_name(preference: str = "") -> str:
    """The artist to credit: the host's preference, else :data:`ENV_ARTIST`, else ""."""
    return preference.strip() or os.environ.get(ENV_ARTIST, "").strip()


def parse_keyframes(text: str) -> list[int]:
    """Keyframes as an artist types them: ``1001, 1020, 1040-1060x10``; sorted, without repeats."""
    cleaned = ",".join(part for part in text.replace(" ", ",").split(",") if part)
    if not cleaned:
        raise UsageError("no keyframes: give at least one, e.g. 1001, 1020, 1050")
    return sorted(parse_frames(cleaned))


@dataclass(frozen=True)
class KeyframeDataset:
    """A folder of keyframe pairs and the manifest that licenses them."""

    folder: Path

    @property
    def input_pattern(self) -> str:
        return str(self.folder / "input" / "input.####.exr")

    @property
    def target_pattern(self) -> str:
        return str(self.folder / "target" / "target.####.exr")

    @property
    def manifest_path(self) -> Path:
        return self.folder / "dataset.toml"

    @property
    def preview_path(self) -> Path:
        return self.folder / "preview.png"

    @property
    def loss_path(self) -> Path:
        """The loss chart, beside the preview (:attr:`TrainingMonitor.loss_path`)."""
        return self.folder / "loss.png"

    def missing(self, keyframes: Sequence[int]) -> list[str]:
        """Keyframe files not rendered yet."""
        paths = [frame_path(p, f) for f in keyframes for p in (self.input_pattern, self.target_pattern)]
        return [p for p in paths if not os.path.isfile(p)]


def write_manifest(
    dataset: KeyframeDataset,
    *,
    name: str,
    keyframes: Sequence[int],
    licence: str,
    rights_holder: str,
    description: str = "",
    contributors: Sequence[manifests.Contributor] = (),
) -> Path:
    """Write (atomically) the manifest listing every keyframe's input and target file under
    ``licence`` held by ``rights_holder``, permitted for training; return its path. The target
    files (the artist's work) credit ``contributors``. Files not rendered, and an empty licence or
    rights holder, are refused here, before the server sees it."""
    if not keyframes:
        raise UsageError("no keyframes to train on")
    if not name.strip():
        raise UsageError("the dataset needs a name")
    if not licence.strip() or not rights_holder.strip():
        raise UsageError(
            "training needs the footage's licence and rights holder (e.g. LicenseRef-studio-sow-12, ACME Pictures)"
        )
    missing = dataset.missing(keyframes)
    if missing:
        raise UsageError(f"keyframes not rendered: {', '.join(missing)}")
    sources = [
        manifests.Source(
            path=Path(frame_path(pattern, frame)).relative_to(dataset.folder).as_posix(),
            licence=licence.strip(),
            rights_holder=rights_holder.strip(),
            role=role,
            contributors=tuple(contributors) if role == "target" else (),
        )
        for frame in sorted(set(keyframes))
        for role, pattern in (("input", dataset.input_pattern), ("target", dataset.target_pattern))
    ]
    return manifests.write_manifest(
        dataset.manifest_path,
        name=name.strip(),
        sources=sources,
        description=description,
        comment="keyframe pairs written by a plateforge host train panel",
    )


@dataclass(frozen=True)
class TrainingRequest:
    """What a train panel asks for."""

    dataset: KeyframeDataset
    keyframes: tuple[int, ...]
    licence: str
    rights_holder: str
    tool: str = "look"
    steps: int = 2000
    size: str = "small"
    #: The trained model's name ("" : the dataset's name, then the server's default).
    model_name: str = ""
    #: Further training config fields (lr, crop, batch ...), as ``plateforge train --param``.
    extra: Mapping[str, ParamValue] = field(default_factory=dict)
    #: The artist whose target keyframes these are (name or studio id; "": nobody credited), and
    #: what they did ("": the tool's :data:`ARTIST_ROLES`).
    artist: str = ""
    artist_role: str = ""

    def contributors(self) -> tuple[manifests.Contributor, ...]:
        """The manifest's credit for the target keyframes."""
        if not self.artist.strip():
            return ()
        role = self.artist_role.strip() or ARTIST_ROLES.get(self.tool, "keyframes")
        try:
            return (manifests.Contributor(self.artist.strip(), role),)
        except ValueError as exc:
            raise UsageError(f"the artist to credit: {exc}") from None

    def params(self) -> dict[str, ParamValue]:
        if self.tool not in TRAINABLE_TOOLS:
            raise UsageError(f"tool {self.tool!r} cannot be trained from keyframe pairs; use one of {TRAINABLE_TOOLS}")
        if self.size not in SIZES:
            raise UsageError(f"model size {self.size!r} is not one of {SIZES}")
        if self.steps < 1:
            raise UsageError(f"steps must be at least 1, got {self.steps}")
        return {**self.extra, "steps": self.steps, "size": self.size}


def start_job(client: Client, request: TrainingRequest) -> JobInfo:
    """Write the keyframes' manifest and queue the job (QUEUED); the server refuses unlicensed
    or missing material with a :class:`~plateforge.errors.LicenceError` naming the files."""
    params = request.params()
    name = request.model_name.strip() or request.dataset.folder.name
    manifest = write_manifest(
        request.dataset,
        name=name,
        keyframes=request.keyframes,
        licence=request.licence,
        rights_holder=request.rights_holder,
        contributors=request.contributors(),
    )
    return TrainingClient(client).start_training(
        dataset=os.path.abspath(manifest), tool=request.tool, params=params, model_name=request.model_name.strip()
    )


class TrainingMonitor:
    """What a train panel shows of one job, fed with its watch events (thread-safe)."""

    def __init__(self, *, preview_path: StrPath | None = None) -> None:
        self.preview_path = Path(preview_path) if preview_path is not None else None
        #: The job's loss chart (loss.png), written beside the preview as it streams in.
        self.loss_path = self.preview_path.with_name("loss.png") if self.preview_path is not None else None
        self.loss_charts_written = 0
        self._lock = threading.Lock()
        self._job: JobInfo | None = None
        self._losses: list[tuple[int, float]] = []
        self._eta: float | None = None
        self._previews = 0

    def feed(self, event: JobEvent) -> None:
        with self._lock:
            self._job = event.job
            self._eta = event.eta_seconds
            if event.job.step and (not self._losses or self._losses[-1][0] != event.job.step):
                self._losses.append((event.job.step, event.job.loss))
        if event.preview_png and self.preview_path is not None:
            self.preview_path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(self.preview_path, event.preview_png)
            with self._lock:
                self._previews += 1
        if event.loss_png and self.loss_path is not None:
            self.loss_path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(self.loss_path, event.loss_png)
            with self._lock:
                self.loss_charts_written += 1

    @property
    def job(self) -> JobInfo | None:
        return self._job

    @property
    def losses(self) -> list[tuple[int, float]]:
        """(step, loss) pairs seen so far, in step order."""
        with self._lock:
            return list(self._losses)

    @property
    def previews_written(self) -> int:
        return self._previews

    def status(self) -> str:
        """One line: the job's state, step, loss, PSNR and ETA (or its model or error)."""
        job = self._job
        if job is None:
            return "no job"
        eta = f"  eta {self._eta:.0f} s" if self._eta is not None and not job.finished else ""
        return describe(job) + eta

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe snapshot, for hosts that store the panel state in the scene."""
        job = self._job
        return {"job": job.id if job else "", "state": job.state if job else "", "losses": self.losses}


def watch_in_background(
    client: Client,
    job_id: str,
    monitor: TrainingMonitor,
    *,
    preview_interval: float = 2.0,
    on_progress: Callable[[ProgressUpdate], None] | None = None,
    on_finish: Callable[[BackgroundTask[JobInfo | None]], None] | None = None,
) -> BackgroundTask[JobInfo | None]:
    """Follow ``job_id`` into ``monitor`` on a worker thread until the job ends; the task's result
    is the job as last seen; ``on_progress`` gets each event's step and status line (on the worker
    thread). Cancelling the *task* detaches at the next event (the job runs on); to
    stop the job, call :meth:`TrainingClient.cancel` and the watch ends with it."""

    def work(context: TaskContext) -> JobInfo | None:
        jobs = TrainingClient(client)
        events = jobs.watch(job_id, preview_interval=preview_interval)
        try:
            for event in events:
                monitor.feed(event)
                context.report(event.job.step, event.job.steps, monitor.status())
                if context.cancel.is_set():
                    break
        finally:
            close = getattr(events, "close", None)  # a generator: closing it cancels the stream now
            if close is not None:
                close()
        return monitor.job

    if not job_id:
        raise PlateforgeError("no job to watch")
    return BackgroundTask(work, name=f"watch-{job_id}", on_progress=on_progress, on_finish=on_finish).start()
