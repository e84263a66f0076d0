"""What the server counts, for ``/metrics`` (Prometheus text format) and the status page.

One :class:`ServerMetrics` per server, on a registry of its own (never prometheus_client's
global one: tests run several servers in one process). The inference service records each
frame request through :meth:`ServerMetrics.request`; the job manager reports training progress
through :meth:`ServerMetrics.training_step`. What is a state rather than an event (queue length,
jobs by state, open streams, GPU memory) is read when scraped, by :class:`_StateCollector`, so it
can never drift from the job records it describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from plateforge.errors import PlateforgeError

if TYPE_CHECKING:
    from plateforge_server.jobs import JobManager

__all__ = ["FRAME_SECONDS_BUCKETS", "RequestRecord", "ServerMetrics", "Tracked"]

#: Frame round trips run from milliseconds (a small frame, a classical tool) to minutes (a 4K
#: frame through a large net on a CPU).
FRAME_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

#: Requests the status page lists, newest first.
RECENT_REQUESTS = 50


@dataclass
class Tracked:
    """One frame request while it runs: the handler fills in what it learns (the model, bytes)."""

    transport: str
    model: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class RequestRecord:
    """One finished frame request, as the status page lists it."""

    at: float
    transport: str
    model: str
    status: str
    seconds: float
    bytes_in: int
    bytes_out: int


def _status_of(error: BaseException | None) -> str:
    """The gRPC status name the interceptor will give the caller for ``error``."""
    if error is None:
        return "OK"
    if isinstance(error, PlateforgeError):
        return str(error.grpc_code)
    if isinstance(error, (GeneratorExit, asyncio.CancelledError)):
        return "CANCELLED"
    return "INTERNAL"


class ServerMetrics:
    def __init__(self, *, device: str = "cpu") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.device = device
        self.started_at = time.time()
        self.requests = Counter(
            "plateforge_requests",
            "Frame requests (Process, ProcessStream) by model and gRPC status.",
            ["model", "status"],
            registry=self.registry,
        )
        self.frame_seconds = Histogram(
            "plateforge_frame_seconds",
            "Seconds from a frame request's first byte to its result's last, by transport.",
            ["transport"],
            buckets=FRAME_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.bytes_received = Counter(
            "plateforge_received_bytes",
            "Request bytes of frame requests, by transport.",
            ["transport"],
            registry=self.registry,
        )
        self.bytes_sent = Counter(
            "plateforge_sent_bytes",
            "Response bytes of frame requests, by transport.",
            ["transport"],
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "plateforge_active_streams", "Frame streams (ProcessStream) open now.", registry=self.registry
        )
        self.steps_per_second = Gauge(
            "plateforge_training_steps_per_second",
            "Training steps per second of each running job, over its run so far.",
            ["job", "tool"],
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._recent: deque[RequestRecord] = deque(maxlen=RECENT_REQUESTS)
        #: Per running job: (step, seconds) when this run was first seen, to measure its pace.
        self._run_start: dict[str, tuple[int, float]] = {}
        self._collector: _StateCollector | None = None
        self._open_streams = 0

    def watch_state(self, jobs: JobManager | None) -> None:
        """Read job states, queue length and GPU memory from these when scraped."""
        self._collector = _StateCollector(jobs, self.device)
        self.registry.register(self._collector)

    @contextlib.contextmanager
    def request(self, transport: str) -> Iterator[Tracked]:
        """Count one frame request: its status from how the block ends, its time, its bytes."""
        tracked = Tracked(transport)
        streaming = transport == "stream"
        if streaming:
            self.active_streams.inc()
            with self._lock:
                self._open_streams += 1
        error: BaseException | None = None
        try:
            yield tracked
        except BaseException as raised:
            error = raised
            raise
        finally:
            if streaming:
                self.active_streams.dec()
                with self._lock:
                    self._open_streams -= 1
            self._finish(tracked, _status_of(error))

    def _finish(self, tracked: Tracked, status: str) -> None:
        seconds = time.perf_counter() - tracked.started
        model = tracked.model or "(unknown)"
        self.requests.labels(model, status).inc()
        self.frame_seconds.labels(tracked.transport).observe(seconds)
        self.bytes_received.labels(tracked.transport).inc(tracked.bytes_in)
        self.bytes_sent.labels(tracked.transport).inc(tracked.bytes_out)
        record = RequestRecord(
            time.time(), tracked.transport, model, status, seconds, tracked.bytes_in, tracked.bytes_out
        )
        with self._lock:
            self._recent.appendleft(record)

    @property
    def open_streams(self) -> int:
        return self._open_streams

    def recent(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._recent)

    def training_step(self, job_id: str, tool: str, step: int, seconds: float) -> None:
        """A job finished ``step``, ``seconds`` into this run (of the engine's clock)."""
        with self._lock:
            first = self._run_start.setdefault(job_id, (step, seconds))
        steps, elapsed = step - first[0], seconds - first[1]
        if steps > 0 and elapsed > 0:
            self.steps_per_second.labels(job_id, tool).set(steps / elapsed)

    def training_ended(self, job_id: str, tool: str) -> None:
        with self._lock:
            self._run_start.pop(job_id, None)
        with contextlib.suppress(KeyError):
            self.steps_per_second.remove(job_id, tool)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def steps_per_second_of(self, job_id: str) -> float | None:
        for metric in self.steps_per_second.collect():
            for sample in metric.samples:
                if sample.labels.get("job") == job_id:
                    return float(sample.value)
        return None


class _StateCollector(Collector):
    """Gauges read from the job manager and the device at scrape time."""

    def __init__(self, jobs: JobManager | None, device: str) -> None:
        self.jobs = jobs
        self.device = device

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time: nothing to describe ahead of it

    def collect(self) -> Iterable[Metric]:
        from plateforge_server.jobs import JobState

        states = GaugeMetricFamily("plateforge_jobs", "Training jobs by state.", labels=["state"])
        queue = GaugeMetricFamily("plateforge_job_queue_length", "Training jobs waiting to run (QUEUED).")
        counts = dict.fromkeys(get_args(JobState), 0)
        if self.jobs is not None:
            for record in self.jobs.list():
                counts[record.state] = counts.get(record.state, 0) + 1
        for state, count in counts.items():
            states.add_metric([state], count)
        queue.add_metric([], counts.get("QUEUED", 0))
        yield states
        yield queue
        memory = _gpu_memory(self.device)
        if memory is not None:
            gauge = GaugeMetricFamily(
                "plateforge_gpu_memory_bytes", "GPU memory torch holds, by kind.", labels=["device", "kind"]
            )
            for kind, value in memory.items():
                gauge.add_metric([self.device, kind], value)
            yield gauge


def _gpu_memory(device: str) -> dict[str, float] | None:
    """torch's allocated and reserved bytes on a CUDA device; None elsewhere."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return {
        "allocated": float(torch.cuda.memory_allocated(device)),
        "reserved": float(torch.cuda.memory_reserved(device)),
    }
