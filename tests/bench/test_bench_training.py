"""bench/training.py runs end to end and prints the JSON it promises (shape, not timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "training.py"


def test_quick_run_prints_the_documented_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--device", "cpu"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["settings"]["quick"] is True and report["settings"]["device"] == "cpu"
    speed = report["steps_per_second"]["small"]
    assert speed["steps_per_s"] > 0 and speed["ms_per_step"] > 0 and speed["vs_first"] == 1.0
    beat = report["time_to_beat_baseline"]
    assert beat["baseline"] == "cleanup-classical" and beat["target_seconds"] == 600
    assert [point["step"] for point in beat["curve"]] == [3, 6]
    for point in beat["curve"]:
        assert math.isfinite(point["psnr_in_mask"]) and 0 <= point["frames_better"] <= 5
        assert abs(point["margin_db"] - (point["psnr_in_mask"] - beat["classical_psnr_in_mask"])) < 2e-3
    # Six steps from a net that starts as the classical cleanup: within a fraction of a dB of it.
    assert abs(beat["curve"][-1]["margin_db"]) < 1.0
    assert (beat["seconds_to_beat"] is None) == (beat["beat_at_step"] is None)


def test_unknown_size_is_refused() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "huge"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown sizes" in done.stderr
