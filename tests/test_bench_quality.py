"""bench/quality.py in its reduced setting (CI): the documented JSON, with figures that mean something."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "quality.py"
METRICS = ("psnr", "ssim", "psnr_frame", "ssim_frame", "warp_error")


def test_quick_run_prints_the_documented_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--tools", "cleanup", "--device", "cpu"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["settings"]["quick"] is True and report["settings"]["shots"] == 1
    methods = report["shot0"]["cleanup"]
    assert set(methods) == {"classical", "learned", "telea", "uncleaned"}
    for figures in methods.values():
        assert all(math.isfinite(figures[m]) for m in METRICS), figures
    # What the tools do must show: painting out beats leaving the rig, and using the neighbouring
    # frames beats inpainting from the frame alone.
    assert methods["classical"]["psnr"] > methods["telea"]["psnr"] > methods["uncleaned"]["psnr"]
    assert methods["uncleaned"]["warp_error"] > methods["classical"]["warp_error"]
    # Four steps barely move a net that starts as the classical cleanup.
    assert abs(methods["learned"]["psnr"] - methods["classical"]["psnr"]) < 1.0
    assert methods["learned"]["train_steps"] == 4 and methods["learned"]["train_seconds"] > 0
    margins = report["summary"]["cleanup"]["margins"]
    assert [m["shot"] for m in margins] == ["shot0"] and margins[0]["metric"] == "psnr"
