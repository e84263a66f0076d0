"""PSNR and SSIM, the quality figures every tool is judged by."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plateforge.metrics import psnr, ssim
from plateforge.shots.synthetic import Shot, make_shot


@pytest.fixture(scope="module")
def shot() -> Shot:
    return make_shot(frames=1)


def test_psnr_known_values_and_mask_weighting() -> None:
    truth = np.full((8, 8, 3), 0.5)
    assert psnr(truth, truth) == math.inf
    assert psnr(truth + 0.1, truth) == pytest.approx(20.0)
    assert psnr(truth + 0.1, truth, peak=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    result = truth.copy()
    result[:, :4] += 0.01  # a small error on the left half, none on the right
    left, right = np.zeros((8, 8)), np.zeros((8, 8))
    left[:, :4], right[:, 4:] = 1.0, 1.0
    assert psnr(result, truth, mask=left) == pytest.approx(40.0)
    assert psnr(result, truth, mask=right) == math.inf
    # Only R, G, B count: a fourth channel (alpha) is ignored.
    rgba = np.concatenate([truth, np.zeros((8, 8, 1))], axis=2)
    assert psnr(rgba + np.array([0.1, 0.1, 0.1, 5.0]), rgba) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        psnr(truth, truth, mask=np.zeros((8, 8)))


def test_ssim_identical_noisy_and_masked(shot: Shot) -> None:
    clean, plate = shot.cleans[0].stack(("R", "G", "B")), shot.plates[0].stack(("R", "G", "B"))
    mask = shot.masks[0].channels["A"]
    assert ssim(clean, clean) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.05, clean.shape).astype(np.float32)
    assert 0.3 < ssim(noisy, clean) < 0.99
    # The plate is the clean plate except under the rig: SSIM sees the rig only inside the mask.
    assert ssim(plate, clean, mask=1 - mask) > 0.99
    assert ssim(plate, clean, mask=mask) < 0.9
