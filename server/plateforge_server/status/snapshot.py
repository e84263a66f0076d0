"""The server's state as plain data: what the status page shows and ``/api/status`` returns.

Built on a thread (job records are read under the manager's lock, image files are stat'ed),
never on the event loop the gRPC calls share.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plateforge import __version__
from plateforge_server.status.metrics import ServerMetrics

if TYPE_CHECKING:
    from plateforge_server.jobs import JobManager, JobRecord
    from plateforge_server.registry import Registry

__all__ = ["JOB_IMAGES", "ServerView", "job_image"]

#: The pictures a job's training folder holds, by the name the page fetches them under.
JOB_IMAGES = ("loss.png", "preview.png")


@dataclass(frozen=True)
class ServerView:
    """What a snapshot reads from: the server's parts, as the server built them."""

    registry: Registry
    jobs: JobManager | None
    metrics: ServerMetrics
    device: str
    tls: bool
    health: dict[str, str]

    def snapshot(self) -> dict[str, Any]:
        records = self.jobs.list() if self.jobs is not None else []
        now = time.time()
        return {
            "server": {
                "version": __version__,
                "device": self.device,
                "tls": self.tls,
                "started_at": self.metrics.started_at,
                "uptime_seconds": now - self.metrics.started_at,
                "health": dict(self.health),
                "active_streams": self.metrics.open_streams,
                "training": self.jobs is not None,
            },
            "models": [
                {
                    "name": info.name,
                    "version": info.version,
                    "tool": info.tool,
                    "hash": info.served_hash,
                    "licences": info.provenance,
                }
                for info in sorted(self.registry.infos(), key=lambda i: (i.name, i.version))
            ],
            "queue_length": sum(1 for r in records if r.state == "QUEUED"),
            "jobs": [self._job(r) for r in sorted(records, key=lambda r: (-r.created_at, r.id))],
            "requests": [
                {
                    "at": r.at,
                    "transport": r.transport,
                    "model": r.model,
                    "status": r.status,
                    "seconds": r.seconds,
                    "bytes_in": r.bytes_in,
                    "bytes_out": r.bytes_out,
                }
                for r in self.metrics.recent()
            ],
        }

    def _job(self, record: JobRecord) -> dict[str, Any]:
        images = {}
        for name in JOB_IMAGES:
            try:
                images[name] = (record.out_dir / name).stat().st_mtime_ns
            except OSError:
                continue
        return {
            "id": record.id,
            "state": record.state,
            "tool": record.tool,
            "dataset": record.dataset,
            "step": record.step,
            "steps": record.steps,
            "loss": _finite(record.loss),
            "val_psnr": _finite(record.val_psnr),
            "steps_per_second": self.metrics.steps_per_second_of(record.id),
            "error": record.error,
            "created_at": record.created_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            #: Picture name -> a version that changes when the file does (the page refetches then).
            "images": images,
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def job_image(jobs: JobManager | None, job_id: str, name: str) -> bytes | None:
    """A job's picture, or None when there is no such job or picture (yet)."""
    if jobs is None or name not in JOB_IMAGES:
        return None
    known = {r.id: r for r in jobs.list()}
    record = known.get(job_id)
    if record is None:
        return None
    path: Path = record.out_dir / name
    try:
        return path.read_bytes()
    except OSError:
        return None
