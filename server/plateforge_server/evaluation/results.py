"""The quality bench's results file: what ran, where, on what, and each shot's figures as they finish.

Schema ``plateforge.benchresults/1``::

    {"schema": ..., "command": "python bench/quality.py --set report ...", "commit": "<git sha>",
     "dirty": false, "machine": {...}, "date": "<UTC ISO of the last entry>",
     "set": {"name": "report", "path": "bench/sets/report.json", "sha256": "..."},
     "settings": {...}, "entries": {"<shot id>/<tool>": {"config_hash": "...", "figures": {...},
     "seconds": 12.3, "finished": "<UTC ISO>"}}, "summary": {...}}

:class:`ResultsFile` writes the whole file again, atomically, after every entry, so a bench killed
midway keeps every entry it finished; a run with ``resume`` keeps the entries whose
``config_hash`` (:func:`config_hash`: the shot, the tool, the bench settings and the full training
config) matches what it would run now, and runs the rest.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from plateforge import atomic
from plateforge.errors import UsageError

__all__ = ["SCHEMA", "ResultsFile", "config_hash", "git_state", "machine", "utc_now"]

SCHEMA: Final = "plateforge.benchresults/1"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def config_hash(value: Mapping[str, Any]) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def git_state(repo: Path, *, ignore: str = "bench/results/") -> tuple[str, bool]:
    """The commit checked out in ``repo`` and whether tracked files differ from it (files under
    ``ignore`` aside: the bench writes there). ``("unknown", True)`` outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown", True
    changed = [line[3:] for line in status.splitlines() if line[3:] and not line[3:].startswith(ignore)]
    return commit, bool(changed)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    """The machine a run measured on: CPU model, logical CPUs and those this process may use,
    torch's intra-op threads and version, the device (and the GPU's name on CUDA)."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


class ResultsFile:
    """The results file at ``path`` (see the module doc), written after every :meth:`record`."""

    def __init__(
        self,
        path: Path,
        *,
        header: Mapping[str, Any],
        summarise: Callable[[Mapping[str, Any]], dict[str, Any]],
        resume: bool,
    ) -> None:
        self.path = path
        self.header = dict(header)
        self.summarise = summarise
        self.entries: dict[str, Any] = {}
        if resume and path.exists():
            old = read_results(path)
            self.entries = dict(old.get("entries", {}))

    def done(self, key: str, digest: str) -> Mapping[str, Any] | None:
        """The figures of entry ``key`` if it finished with config hash ``digest``; else None."""
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("config_hash") == digest:
            figures: Mapping[str, Any] = entry["figures"]
            return figures
        return None

    def record(self, key: str, digest: str, figures: Mapping[str, Any], seconds: float) -> None:
        """Add (or replace) entry ``key`` and write the file."""
        self.entries[key] = {
            "config_hash": digest,
            "figures": dict(figures),
            "seconds": round(seconds, 1),
            "finished": utc_now(),
        }
        self.write()

    def document(self, keep: set[str] | None = None) -> dict[str, Any]:
        """The file's content; with ``keep``, only those entries (a run's own, in its order)."""
        entries = self.entries if keep is None else {k: v for k, v in self.entries.items() if k in keep}
        return {
            "schema": SCHEMA,
            **self.header,
            "date": utc_now(),
            "entries": entries,
            "summary": self.summarise(entries),
        }

    def write(self, keep: set[str] | None = None) -> dict[str, Any]:
        document = self.document(keep)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path, json.dumps(document, indent=2, sort_keys=False) + "\n", durable=True)
        return document


def read_results(path: Path) -> dict[str, Any]:
    """A results file of schema :data:`SCHEMA`; UsageError naming what was found otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the bench results {path}: {error}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError(f"{path}: expected bench results of schema {SCHEMA!r}, found {found!r}")
    return data
