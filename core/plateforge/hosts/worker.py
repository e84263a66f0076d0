"""Long work off a host's UI thread, with progress and a cancel that reaches the work.

A host starts a :class:`BackgroundTask` with a function of a :class:`TaskContext`; the function
reports progress through the context and checks (or passes on) ``context.cancel``, a
:class:`threading.Event`, which is what :func:`plateforge.batch.run_sequence` and
:func:`~plateforge.hosts.process.process_cached` take. The host's own progress widget is wired in
with two plain callables: ``on_progress`` (called on the worker thread; Nuke's ``ProgressTask`` is
made to be updated from there) and ``poll_cancelled`` (polled a few times a second, e.g.
``ProgressTask.isCancelled``), so a cancel button works while a frame is in flight. ``on_finish``
runs on the worker thread once the work ends, before :meth:`BackgroundTask.wait` returns (so it
must not wait on the task); hosts hop to their main thread from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from plateforge.errors import CancelledError, PlateforgeError
from plateforge.messages import explain

__all__ = ["BackgroundTask", "ProgressUpdate", "TaskContext", "TaskState"]

T = TypeVar("T")
TaskState = Literal["pending", "running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class ProgressUpdate:
    """Where the work is: ``done`` of ``total`` units, and a line for the user."""

    done: int
    total: int
    message: str

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def percent(self) -> int:
        return round(100 * self.fraction)


class TaskContext:
    """What the work function gets: the cancel event and a way to report progress."""

    def __init__(self, cancel: threading.Event, report: Callable[[ProgressUpdate], None]) -> None:
        self.cancel = cancel
        self._report = report

    def report(self, done: int, total: int, message: str = "") -> None:
        self._report(ProgressUpdate(done, total, message))

    def check_cancelled(self) -> None:
        """Raise :class:`CancelledError` if the task was cancelled (call between units of work)."""
        if self.cancel.is_set():
            raise CancelledError("cancelled")


class BackgroundTask(Generic[T]):
    """``work(context)`` on a daemon thread; :meth:`cancel` sets the event the work watches."""

    def __init__(
        self,
        work: Callable[[TaskContext], T],
        *,
        name: str = "plateforge",
        on_progress: Callable[[ProgressUpdate], None] | None = None,
        poll_cancelled: Callable[[], bool] | None = None,
        on_finish: Callable[[BackgroundTask[T]], None] | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.name = name
        self._work = work
        self._on_progress = on_progress
        self._poll_cancelled = poll_cancelled
        self._on_finish = on_finish
        self._poll_interval = poll_interval
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._state: TaskState = "pending"
        self._result: T | None = None
        self._error: BaseException | None = None
        self._progress = ProgressUpdate(0, 0, "")
        self._thread = threading.Thread(target=self._run, name=f"{name}-work", daemon=True)

    # -- control --------------------------------------------------------------------------------

    def start(self) -> BackgroundTask[T]:
        with self._lock:
            if self._state != "pending":
                raise PlateforgeError(f"task {self.name!r} was already started")
            self._state = "running"
        self._thread.start()
        if self._poll_cancelled is not None:
            threading.Thread(target=self._watch_host_cancel, name=f"{self.name}-cancel", daemon=True).start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop; it stops at its next check (after the frame in hand)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> T:
        """Block until the work ends; its result, or its exception raised here."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"task {self.name!r} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> TaskState:
        return self._state

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def progress(self) -> ProgressUpdate:
        return self._progress

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def describe(self) -> str:
        """One line for a status knob or a message box."""
        if self._state == "failed" and self._error is not None:
            return f"failed: {explain(self._error).sentence}"  # the fix; the raw detail is for message boxes
        if self._state == "cancelled":
            return f"cancelled ({self._progress.done}/{self._progress.total} done)"
        if self._state == "running":
            tail = f": {self._progress.message}" if self._progress.message else ""
            return f"running {self._progress.done}/{self._progress.total}{tail}"
        return self._state

    # -- the threads ----------------------------------------------------------------------------

    def _report(self, update: ProgressUpdate) -> None:
        self._progress = update
        if self._on_progress is not None:
            self._on_progress(update)

    def _watch_host_cancel(self) -> None:
        assert self._poll_cancelled is not None
        while not self._finished.wait(self._poll_interval):
            if self._poll_cancelled():
                self._cancel.set()
                return

    def _run(self) -> None:
        try:
            self._result = self._work(TaskContext(self._cancel, self._report))
            self._state = "succeeded"
        except CancelledError as error:
            self._error = error
            self._state = "cancelled"
        except BaseException as error:  # reported to the host through error/state, not lost on a thread
            self._error = error
            self._state = "failed"
        finally:
            try:
                if self._on_finish is not None:
                    self._on_finish(self)
            finally:
                self._finished.set()
