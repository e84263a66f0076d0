"""bench/quality.py in its reduced setting (CI): the documented JSON (a results document, schema
plateforge.benchresults/1), with figures that mean something."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"
METRICS = ("psnr", "ssim", "psnr_frame", "ssim_frame", "warp_error", "psnr_display")


def test_quick_run_prints_the_documented_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--tools", "cleanup", "--device", "cpu"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["schema"] == "plateforge.benchresults/1" and report["set"]["name"] == "tune"
    assert report["settings"]["quick"] is True and len(report["settings"]["shots"]) == 1
    assert report["command"].startswith("python bench/quality.py --quick")
    assert list(report["entries"]) == ["analytic-100/cleanup"]  # the tune set's first shot, never a report shot
    methods = report["entries"]["analytic-100/cleanup"]["figures"]
    assert set(methods) == {"classical", "learned", "telea", "uncleaned"}
    for figures in methods.values():
        assert all(math.isfinite(figures[m]) for m in METRICS), figures
    # What the tools do must show: painting out beats leaving the rig, and using the neighbouring
    # frames beats inpainting from the frame alone.
    assert methods["classical"]["psnr"] > methods["telea"]["psnr"] > methods["uncleaned"]["psnr"]
    # Through the view too (PSNR after the sRGB transform, inside the mask).
    assert (
        methods["classical"]["psnr_display"] > methods["telea"]["psnr_display"] > methods["uncleaned"]["psnr_display"]
    )
    assert methods["uncleaned"]["warp_error"] > methods["classical"]["warp_error"]
    # Four steps barely move a net that starts as the classical cleanup.
    assert abs(methods["learned"]["psnr"] - methods["classical"]["psnr"]) < 1.0
    assert methods["learned"]["train_steps"] == 4 and methods["learned"]["train_seconds"] > 0
    margins = report["summary"]["cleanup"]["margins"]
    assert [m["shot"] for m in margins] == ["analytic-100"] and margins[0]["metric"] == "psnr"
    display = report["summary"]["cleanup"]["also"]["learned/psnr_display"]["margins"]
    assert display[0]["margin"] == round(methods["learned"]["psnr_display"] - methods["classical"]["psnr_display"], 4)
