"""bench/farm.py runs end to end and prints the JSON document it promises (shape, not timings)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "farm.py"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("grpc_reflection") is None, reason="needs plateforge[server] to run a server"
    ),
    pytest.mark.skipif(not (Path(sys.executable).parent / "openjd").exists(), reason="needs openjd-cli ([dev])"),
]

TIMED = ("one_server", "two_servers", "direct_process", "openjd_shared_server")


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _run(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", *args], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_quick_run_prints_the_documented_json() -> None:
    doc = _run("--frames", "3", "--chunk-size", "2", "--no-session-server")
    assert set(doc) == {"settings", "results"}
    settings = doc["settings"]
    assert settings["model"] == "cleanup-classical" and settings["frames"] == 3 and settings["chunk_size"] == 2
    for key in ("width", "height", "repeats", "cpu_count", "python", "grpc", "platform", "servers"):
        assert key in settings, key
    results = doc["results"]
    overheads = {
        "openjd_overhead_s",
        "openjd_overhead_per_chunk_s",
        "openjd_overhead_min_s",
        "openjd_overhead_per_chunk_min_s",
    }
    assert set(results) == {*TIMED, "two_vs_one_servers", *overheads}
    for name in TIMED:
        stats = results[name]
        for field in ("median_s", "min_s", "frames_per_s"):
            assert _positive(stats[field]), (name, field, stats[field])
        assert stats["min_s"] <= stats["median_s"] and len(stats["all_s"]) == settings["repeats"]
    assert results["openjd_shared_server"]["chunks"] == 2
    assert _positive(results["two_vs_one_servers"])
    overhead = results["openjd_overhead_s"]
    assert math.isclose(overhead / 2, results["openjd_overhead_per_chunk_s"], abs_tol=1e-3)
    assert math.isclose(results["openjd_overhead_min_s"] / 2, results["openjd_overhead_per_chunk_min_s"], abs_tol=1e-3)
