"""Background work with progress and cancel, driving a real server as a host's progress dialog would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from plateforge.client import Client
from plateforge.errors import CancelledError, PlateforgeError, UnknownModelError
from plateforge.hosts.cache import CacheLayout, read_index
from plateforge.hosts.process import ProcessReport, process_cached
from plateforge.hosts.worker import BackgroundTask, ProgressUpdate, TaskContext
from plateforge.shots.synthetic import make_shot
from tests.plateforge.hosts.test_process import render

FRAMES = list(range(1001, 1009))


@pytest.fixture
def layout(tmp_path: Path) -> CacheLayout:
    shot = make_shot(width=64, height=48, frames=len(FRAMES), seed=5)
    layout = CacheLayout.for_node(tmp_path, "PF_Model1")
    render(layout, "plate", dict(zip(shot.frame_numbers, shot.plates, strict=True)))
    return layout


def _work(client: Client, layout: CacheLayout, model: str = "passthrough") -> Callable[[TaskContext], ProcessReport]:
    def work(context: TaskContext) -> ProcessReport:
        return process_cached(
            client,
            layout=layout,
            model=model,
            frames=FRAMES,
            inputs=["plate"],
            chunk=3,
            progress=lambda done, total, frame: context.report(done, total, f"frame {frame}"),
            cancel=context.cancel,
        )

    return work


def test_progress_reaches_the_host_from_the_worker_thread(client: object, layout: CacheLayout) -> None:
    assert isinstance(client, Client)
    updates: list[tuple[ProgressUpdate, str]] = []
    finished: list[str] = []
    task: BackgroundTask[ProcessReport] = BackgroundTask(
        _work(client, layout),
        on_progress=lambda u: updates.append((u, threading.current_thread().name)),
        on_finish=lambda t: finished.append(t.state),
    ).start()
    report = task.wait(timeout=120)
    assert report.sent == tuple(FRAMES) and task.state == "succeeded" and finished == ["succeeded"]
    assert [u.done for u, _ in updates] == list(range(1, len(FRAMES) + 1))
    assert updates[-1][0].percent == 100 and updates[-1][0].message == "frame 1008"
    assert {name for _, name in updates} == {"plateforge-work"}
    with pytest.raises(PlateforgeError, match="already started"):
        task.start()


def test_the_hosts_cancel_button_stops_the_work(client: object, layout: CacheLayout) -> None:
    assert isinstance(client, Client)
    pressed = threading.Event()  # the host's dialog: pressed after the second frame

    def on_progress(update: ProgressUpdate) -> None:
        if update.done >= 2:
            pressed.set()

    task: BackgroundTask[ProcessReport] = BackgroundTask(
        _work(client, layout),
        on_progress=on_progress,
        poll_cancelled=pressed.is_set,
        poll_interval=0.01,
    ).start()
    with pytest.raises(CancelledError):
        task.wait(timeout=120)
    assert task.state == "cancelled" and task.cancel_requested
    assert task.describe().startswith("cancelled (")
    done = read_index(layout)
    assert 2 <= len(done) < len(FRAMES)


def test_a_failure_is_kept_for_the_host(client: object, layout: CacheLayout) -> None:
    assert isinstance(client, Client)
    task: BackgroundTask[ProcessReport] = BackgroundTask(_work(client, layout, "no-such-model")).start()
    with pytest.raises(UnknownModelError, match="no-such-model"):
        task.wait(timeout=60)
    assert task.state == "failed" and "no-such-model" in task.describe()


def test_cancel_from_the_host_thread() -> None:
    started = threading.Event()

    def work(context: TaskContext) -> int:
        started.set()
        while True:
            context.check_cancelled()
            context.cancel.wait(0.01)

    task = BackgroundTask(work).start()
    assert started.wait(10)
    task.cancel()
    with pytest.raises(CancelledError):
        task.wait(timeout=10)
    assert task.state == "cancelled"
