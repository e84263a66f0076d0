"""The relight/look benchmark functions bench/quality.py calls: shape of the report, key choice,
and that the figures rank methods the way the ground truth says they must."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from plateforge.shots.relit import make_relit_shot
from plateforge_server.tools.relight.evaluation import (
    METRICS,
    RelightScene,
    bench_look,
    bench_relight,
    key_indices,
    score,
    tonemap,
)


@pytest.mark.parametrize(
    ("frames", "keys", "expected"),
    [
        pytest.param(24, 1, [12], id="one-key-mid-shot"),
        pytest.param(24, 4, [3, 9, 15, 21], id="four-spread"),
        pytest.param(12, 8, [0, 2, 3, 5, 6, 8, 9, 11], id="eight-of-twelve"),
    ],
)
def test_keys_are_spread_over_the_shot(frames: int, keys: int, expected: list[int]) -> None:
    assert key_indices(frames, keys) == expected


def test_keys_must_leave_frames_to_score() -> None:
    with pytest.raises(ValueError, match="leave frames to score"):
        key_indices(4, 4)


def test_score_is_perfect_on_the_truth_and_worse_off_it() -> None:
    truth = [np.full((8, 8, 3), 0.5, np.float32)]
    perfect = score(truth, truth)
    assert perfect["psnr"] == float("inf") and perfect["delta_e2000"] == 0.0
    worse = score([truth[0] * 1.1], truth)
    assert worse["delta_e2000"] > 0 and worse["psnr"] < 40


def test_tonemapped_psnr_weighs_a_highlight_as_a_display_shows_it() -> None:
    np.testing.assert_allclose(tonemap(np.array([-1.0, 0.0, 1.0, 3.0, 1e6])), [0.0, 0.0, 0.5, 0.75, 1.0], atol=1e-6)
    truth = np.full((10, 10, 3), 0.2, np.float32)
    truth[0, 0] = 8.0  # one glowing pixel, as the practical's fixture
    highlight_off, midtones_off = truth.copy(), truth * 1.1
    highlight_off[0, 0] = 4.0  # half the highlight's value, the rest exact
    midtones_off[0, 0] = 8.0
    hi, mid = score([highlight_off], [truth]), score([midtones_off], [truth])
    # Scene-linear, the one wrong highlight outweighs a 10 % error on every other pixel ...
    assert hi["psnr"] < mid["psnr"] - 10
    # ... tonemapped, it is one pixel among 100, halved on display (8/9 -> 4/5): both count.
    assert abs(hi["psnr_tonemapped"] - mid["psnr_tonemapped"]) < 10
    assert math.isinf(score([truth], [truth])["psnr_tonemapped"])
    assert set(METRICS) == {"psnr", "psnr_tonemapped", "delta_e2000"}


def test_classical_fits_the_look_far_better_than_the_relight() -> None:
    shot = make_relit_shot(width=64, height=48, frames=6, seed=0)
    keys = key_indices(6, 2)
    look, relit = RelightScene(shot, "look"), RelightScene(shot, "relit")
    assert look.classical(keys)["psnr"] > look.unchanged(keys)["psnr"] + 5
    assert look.classical(keys, lut=True)["delta_e2000"] < look.classical(keys)["delta_e2000"]
    assert look.classical(keys)["delta_e2000"] < relit.classical(keys)["delta_e2000"]


def test_bench_functions_report_every_method_per_k(tmp_path: Path) -> None:
    args = argparse.Namespace(width=32, height=32, frames=3, steps=2, device="cpu", params={"batch": 1, "crop": 16})
    for bench in (bench_relight, bench_look):
        report = bench(args=args, seed=0, work_dir=tmp_path / bench.__name__)
        assert sorted(report) == ["k1", "k2"]  # K = 4 and 8 need more than 3 frames
        for entry in report.values():
            assert {"unchanged", "classical", "classical_lut", "learned", "learned_aov"} <= set(entry)
            for method in ("classical", "learned", "learned_aov"):
                assert {"psnr", "psnr_tonemapped", "delta_e2000"} <= set(entry[method])
                assert np.isfinite(entry[method]["psnr"]) and entry[method]["delta_e2000"] >= 0
            assert entry["learned"]["train_steps"] == 2 and entry["learned_aov"]["train_seconds"] > 0


def test_the_rgb_run_reads_rgb_whatever_the_bench_params_say() -> None:
    # A tuning run's --param input_channels=... used to reach the RGB-only run too, so "learned"
    # silently became a second AOV run.
    from plateforge.shots.relit import AOV_CHANNELS
    from plateforge_server.tools.relight.evaluation import RGB, _config

    aov = ",".join((*RGB, *AOV_CHANNELS))
    args = argparse.Namespace(steps=3, device="cpu", params={"input_channels": aov, "batch": 2})
    rgb_config = _config(args, "relight", RGB)
    assert rgb_config.input_channels == RGB and rgb_config.batch == 2
    assert _config(args, "relight", (*RGB, *AOV_CHANNELS)).input_channels == (*RGB, *AOV_CHANNELS)
    plain = argparse.Namespace(steps=3, device="cpu", params={})
    assert _config(plain, "relight", RGB).input_channels == RGB
