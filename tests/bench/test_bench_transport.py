"""bench/transport.py runs end to end and prints the JSON document it promises (shape, not timings)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "transport.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("grpc_reflection") is None, reason="needs plateforge[server] to run a server"
)

METHODS = ("memcpy", "socket", "grpc_bytes", "unary", "stream", "shm")
RATIOS = (
    "unary_vs_socket",
    "stream_vs_socket",
    "unary_vs_socket_min",
    "stream_vs_socket_min",
    "grpc_bytes_vs_socket",
    "stream_vs_grpc_bytes",
    "stream_vs_grpc_bytes_min",
    "shm_vs_memcpy",
    "shm_vs_memcpy_min",
    "socket_vs_shm",
    "stream_vs_shm",
    "shm_vs_memcpy_without_passes",
    "socket_vs_memcpy",
)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _run(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--repeats", "1", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_quick_run_prints_the_documented_json() -> None:
    doc = _run()
    assert set(doc) == {"settings", "results", "targets"}

    settings = doc["settings"]
    for key in ("repeats", "chunk_bytes", "cpu_count", "python", "grpc", "platform", "server"):
        assert key in settings, key
    assert settings["repeats"] == 1
    assert settings["server"] == "subprocess on 127.0.0.1"

    results = doc["results"]
    assert set(results) == {"1080p_half", "1080p_float", "4k_half", "4k_float"}
    for key, entry in results.items():
        width, height = entry["width"], entry["height"]
        per_pixel = 2 if key.endswith("half") else 4
        assert entry["bytes"] == width * height * 4 * per_pixel, key
        for method in METHODS:
            stats = entry[method]
            for field in ("median_s", "min_s", "mb_per_s"):
                assert _positive(stats[field]), (key, method, field, stats[field])
            assert stats["min_s"] <= stats["median_s"]
        for name in RATIOS:
            assert _positive(entry[name]), (key, name, entry[name])
        for name in ("sha256_s", "finite_scan_s"):
            assert _positive(entry["server_passes"][name]), (key, name)

    targets = doc["targets"]
    assert targets["4k_half_stream_vs_socket_max"] == 1.3
    assert targets["4k_half_shm_vs_memcpy_max"] == 2.5
    assert targets["4k_half_socket_vs_shm_min"] == 10.0
    assert set(targets["each"]) == {"stream_vs_socket", "shm_vs_memcpy", "socket_vs_shm"}
    assert targets["met"] == all(targets["each"].values())


def test_subsets_and_chunk_size_are_honoured() -> None:
    doc = _run("--sizes", "4k", "--types", "half", "--chunk-bytes", "65536")
    assert set(doc["results"]) == {"4k_half"}
    assert doc["settings"]["chunk_bytes"] == 65536
    entry = doc["results"]["4k_half"]
    for name in ("stream_vs_socket", "grpc_bytes_vs_socket", "stream_vs_grpc_bytes", "stream_vs_grpc_bytes_min"):
        assert _positive(entry[name]), (name, entry[name])
    for field in ("median_s", "min_s", "mb_per_s"):
        assert _positive(entry["grpc_bytes"][field]), (field, entry["grpc_bytes"][field])
