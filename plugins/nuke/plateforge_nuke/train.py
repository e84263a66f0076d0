"""The PF_Train node (CopyCat-style): Nuke calls only; the logic is :mod:`plateforge.hosts.training`.

Pick the input and ground-truth nodes (its two inputs) and keyframes, the tool, steps and net
size, and the footage's licence; Start renders both inputs at the keyframes into the node's
dataset folder (internal Writes ``pfw_input`` / ``pfw_target``), writes the licence manifest and
queues the job. The status and loss lines, the preview (internal Read ``pfr_preview``) and the
loss chart (internal Read ``pfr_loss``; both PNGs streamed by WatchJob into the dataset folder by
:class:`~plateforge.hosts.training.TrainingMonitor`) update while it trains; Cancel
stops the job at a checkpoint; Resume continues it. The finished model is served at once: the
processing nodes list it after a refresh. The job id is kept in the node, so a reopened script
can resume or re-attach.
"""

from __future__ import annotations

from pathlib import Path

import nuke

from plateforge.errors import PlateforgeError
from plateforge.hosts.cache import CacheLayout
from plateforge.hosts.connection import connect
from plateforge.hosts.training import (
    KeyframeDataset,
    TrainingMonitor,
    TrainingRequest,
    parse_keyframes,
    start_job,
    watch_in_background,
)
from plateforge.hosts.worker import BackgroundTask, ProgressUpdate
from plateforge.jobs_client import JobInfo, TrainingClient
from plateforge.messages import user_message
from plateforge_nuke import render_write
from plateforge_nuke.settings import artist, cache_root, server_settings

__all__ = ["add_keyframe", "cancel", "on_create", "resume", "start"]

#: Watches by node full name (one per node).
_WATCHES: dict[str, BackgroundTask[JobInfo | None]] = {}


def _this() -> nuke.Group:
    node = nuke.thisNode()
    if not isinstance(node, nuke.Group):
        raise PlateforgeError(f"{node.name()} is not a plateforge node")
    return node


def _text(node: nuke.Node, knob: str) -> str:
    found = node.knob(knob)
    return str(found.value()).strip() if found is not None else ""


def _set(node: nuke.Node, knob: str, value: object) -> None:
    found = node.knob(knob)
    if found is not None:
        found.setValue(value)


def _dataset(node: nuke.Group) -> KeyframeDataset:
    folder = _text(node, "pfn_dataset")
    if not folder:
        folder = str(CacheLayout.for_node(cache_root(), node.fullName() + "_train").folder)
        _set(node, "pfn_dataset", folder)
    return KeyframeDataset(Path(folder))


def on_create() -> None:
    node = _this()
    _dataset(node)
    if not _text(node, "pfn_keyframes"):
        _set(node, "pfn_keyframes", str(nuke.frame()))
    if not _text(node, "pfn_artist"):
        _set(node, "pfn_artist", artist())


def add_keyframe() -> None:
    """The "add current frame" button."""
    node = _this()
    frames = set(parse_keyframes(_text(node, "pfn_keyframes"))) if _text(node, "pfn_keyframes") else set()
    frames.add(nuke.frame())
    _set(node, "pfn_keyframes", ", ".join(str(f) for f in sorted(frames)))


def _on_event(name: str, monitor: TrainingMonitor) -> None:
    node = nuke.toNode(name)
    if node is None:
        return
    _set(node, "pfn_status", monitor.status())
    recent = monitor.losses[-5:]
    _set(node, "pfn_loss", "  ".join(f"{step}: {loss:.5f}" for step, loss in recent))
    for read_name, written in (("pfr_preview", monitor.previews_written), ("pfr_loss", monitor.loss_charts_written)):
        read = node.node(read_name) if isinstance(node, nuke.Group) else None
        reload = read.knob("reload") if read is not None else None
        if isinstance(reload, nuke.Script_Knob) and written:
            reload.execute()


def _watch(node: nuke.Group, job_id: str) -> None:
    name = node.fullName()
    old = _WATCHES.get(name)
    if old is not None and not old.done:
        old.cancel()  # detach the previous watch; the job itself is not touched
    monitor = TrainingMonitor(preview_path=_dataset(node).preview_path)
    client = connect(server_settings())

    def on_progress(_update: ProgressUpdate) -> None:
        nuke.executeInMainThread(_on_event, args=(name, monitor))

    def on_finish(task: BackgroundTask[JobInfo | None]) -> None:
        client.close()
        nuke.executeInMainThread(_on_event, args=(name, monitor))
        if task.state == "failed":
            told = user_message(task.error) if task.error else task.describe()
            nuke.executeInMainThread(nuke.message, args=(f"plateforge {name}: {told}",))

    _WATCHES[name] = watch_in_background(client, job_id, monitor, on_progress=on_progress, on_finish=on_finish)


def start() -> None:
    """The Start button: render the keyframes, write the manifest, queue the job, watch it."""
    node = _this()
    try:
        dataset = _dataset(node)
        keyframes = tuple(parse_keyframes(_text(node, "pfn_keyframes")))
        request = TrainingRequest(
            dataset=dataset,
            keyframes=keyframes,
            licence=_text(node, "pfn_licence"),
            rights_holder=_text(node, "pfn_rights_holder"),
            tool=_text(node, "pfn_tool") or "look",
            steps=int(node["pfn_steps"].value()),
            size=_text(node, "pfn_size") or "small",
            model_name=_text(node, "pfn_model_name"),
            artist=_text(node, "pfn_artist") or artist(),
        )
        request.params()  # refuse a bad request before rendering anything
        for role in ("input", "ground_truth"):
            if node.input({"input": 0, "ground_truth": 1}[role]) is None:
                raise PlateforgeError(f"connect the {role!r} input of {node.name()}")
        for write in ("pfw_input", "pfw_target"):
            inner = node.node(write)
            if inner is None:
                raise PlateforgeError(f"{node.name()} lacks its internal Write {write}")
            for frame in keyframes:
                render_write(inner, frame, frame)
        with connect(server_settings()) as client:
            job = start_job(client, request)
    except (PlateforgeError, RuntimeError, ValueError) as error:
        nuke.message(f"plateforge {node.name()}: {user_message(error)}")
        return
    _set(node, "pfn_job", job.id)
    _set(node, "pfn_status", f"job {job.id} queued ({job.steps} steps)")
    _watch(node, job.id)


def _job_call(action: str) -> None:
    node = _this()
    job_id = _text(node, "pfn_job")
    if not job_id:
        nuke.message(f"plateforge {node.name()}: no job yet; press Start")
        return
    try:
        with connect(server_settings()) as client:
            jobs = TrainingClient(client)
            job = jobs.cancel(job_id) if action == "cancel" else jobs.resume(job_id)
    except PlateforgeError as error:
        nuke.message(f"plateforge {node.name()}: {user_message(error)}")
        return
    _set(node, "pfn_status", f"job {job.id} {job.state.lower()}")
    if action == "resume":
        _watch(node, job.id)


def cancel() -> None:
    """The Cancel button: the job checkpoints and stops (Resume continues it)."""
    _job_call("cancel")


def resume() -> None:
    """The Resume button: queue a cancelled, interrupted or failed job again from its checkpoint."""
    _job_call("resume")
