"""bench/inference.py runs end to end and prints the JSON it promises (shape, not timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "inference.py"


def test_quick_run_prints_the_documented_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--repeats", "1", "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings"]["device"] == "cpu" and report["settings"]["quick"] is True
    entry = report["results"]["small_quick"]
    assert (entry["width"], entry["height"]) == (160, 96)
    assert entry["parameters"] > 0 and entry["receptive_field"] > 0
    for timing in (entry["tiled"], entry["untiled"]):
        assert math.isfinite(timing["median_s"]) and 0 < timing["min_s"] <= timing["median_s"]
    assert entry["tiled_vs_untiled"] > 0
    exported = entry["onnxruntime"]  # the exported ONNX beside the torch path, same run
    assert exported["provider"] == "CPUExecutionProvider" and 0 < exported["min_s"] <= exported["median_s"]
    assert exported["max_abs_vs_server"] <= 1e-4


def test_unknown_size_is_refused() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "huge"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown sizes" in done.stderr
