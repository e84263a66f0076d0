"""evaluate_matte end to end on a tiny shot: the JSON shape bench/quality.py reads, and figures
that agree with the metrics applied by hand."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from plateforge.errors import UsageError
from plateforge.shots.dailies import make_matte_shot
from plateforge_server.tools.matte import classical as matte_classical
from plateforge_server.tools.matte.evaluation import bench_matte, evaluate_matte, sad

RGB = ("R", "G", "B")
METRICS = {
    "sad",
    "mse",
    "grad",
    "conn",
    "psnr",
    "ssim",
    "psnr_display",
    "ssim_display",
    "psnr_unmixed",
    "warp_error",
}


def test_figures_per_method(tmp_path: Path) -> None:
    shot = make_matte_shot(width=96, height=64, frames=4, seed=1)
    report = evaluate_matte(
        shot, keyframes=(0, 3), steps=2, device="cpu", work_dir=tmp_path, params={"crop": 32, "batch": 2}
    )
    assert set(report) == {"classical", "learned", "closed_form"}
    assert set(report["classical"]) == METRICS
    assert set(report["learned"]) == METRICS | {"train_seconds", "keyframes"}
    assert set(report["closed_form"]) == METRICS | {"solve_seconds"}
    assert all(math.isfinite(v) for figures in report.values() for v in figures.values())
    # Frames 1 and 2 are scored (0 and 3 are keyframes), exactly as the key scores by hand.
    by_hand = [
        sad(matte_classical.key(shot.plates[i].stack(RGB), shot.cleans[i].stack(RGB)), shot.alpha(i)) for i in (1, 2)
    ]
    assert report["classical"]["sad"] == pytest.approx(float(np.mean(by_hand)))
    assert report["learned"]["keyframes"] == 2.0


def test_keyframes_must_leave_frames_to_score(tmp_path: Path) -> None:
    shot = make_matte_shot(width=64, height=48, frames=2, seed=0)
    with pytest.raises(UsageError, match="every frame is a keyframe"):
        evaluate_matte(shot, keyframes=(0, 1), steps=1, device="cpu", work_dir=tmp_path)
    with pytest.raises(UsageError, match=r"keyframes \[5\] are outside"):
        evaluate_matte(shot, keyframes=(0, 5), steps=1, device="cpu", work_dir=tmp_path)


def test_bench_entry_point(tmp_path: Path) -> None:
    args = argparse.Namespace(frames=4, width=80, height=48, steps=1, device="cpu", params={"crop": 32, "batch": 1})
    report = bench_matte(args=args, seed=0, work_dir=tmp_path)
    assert set(report) == {"classical", "learned", "closed_form"}
