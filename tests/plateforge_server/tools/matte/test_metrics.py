"""The matting metrics against values worked out by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plateforge_server.tools.matte.evaluation import connectivity_error, gradient_error, mse, sad, warp_error

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_sad_and_mse_by_hand() -> None:
    result = np.array([[0.5, 0.0], [1.0, 1.0]])
    truth = np.array([[0.0, 0.0], [1.0, 0.25]])
    # |0.5| + |0.75| = 1.25, reported in thousands; squares 0.25 + 0.5625 over 4 pixels.
    assert sad(result, truth) == pytest.approx(1.25e-3)
    assert mse(result, truth) == pytest.approx((0.25 + 0.5625) / 4)


def test_connectivity_by_hand() -> None:
    truth = np.array([[1.0, 1.0, 0.0]])
    result = np.array([[1.0, 0.0, 0.0]])
    # At every threshold the source region is pixel 0 alone: pixels 1 and 2 drop out at the first
    # step (level 0), pixel 0 never does (level 1). phi: result [1, 1, 1], truth [1, 1 - 1, 1].
    assert connectivity_error(result, truth) == pytest.approx(1e-3)
    # A half-transparent pixel cut off from the source: level 0 for it, d = 0.5 >= 0.15 counts.
    truth = np.array([[1.0, 0.0, 0.5]])
    result = np.array([[1.0, 0.0, 0.0]])
    assert connectivity_error(result, truth) == pytest.approx(0.5e-3)
    # Identical mattes: zero, whatever they hold.
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0, 1, (9, 7))
    assert connectivity_error(alpha, alpha) == 0.0


def test_gradient_error() -> None:
    assert gradient_error(np.zeros((8, 8)), np.zeros((8, 8))) == 0.0
    ramp = np.tile(np.linspace(0.0, 0.7, 16), (16, 1))
    assert gradient_error(ramp, ramp) == 0.0
    # Against a flat matte the error is the sum of the ramp's squared gradient magnitude: it
    # scales with the slope squared, and a constant offset changes nothing.
    one = gradient_error(ramp, np.zeros_like(ramp))
    assert one > 0
    assert gradient_error(2 * ramp, np.zeros_like(ramp)) == pytest.approx(4 * one)
    assert gradient_error(ramp + 0.2, np.full_like(ramp, 0.2)) == pytest.approx(one)
    # Interior pixels of a ramp of slope s have gradient magnitude s * |sum(x * kernel)|, the
    # kernel a Gaussian derivative (sigma 1.4, half-width ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = 4)
    # of unit L2 norm; edge pixels (replicated border) have less.
    slope = 0.05
    xs = np.arange(-4, 5, dtype=np.float64)
    g = np.exp(-(xs**2) / (2 * 1.4**2))
    kx = np.outer(g, -xs * g)
    kx /= math.sqrt((kx**2).sum())
    per_pixel = (slope * abs(float((kx * xs[None, :]).sum()))) ** 2
    ramp = np.tile(np.arange(30, dtype=np.float64) * slope, (10, 1))
    error = gradient_error(ramp, np.zeros_like(ramp)) * 1000
    assert 10 * (30 - 8) * per_pixel * 0.9999 <= error <= 10 * 30 * per_pixel


def test_warp_error() -> None:
    frame0 = np.zeros((6, 8))
    frame0[2:4, 1:3] = 1.0
    frame1 = np.roll(frame0, 2, axis=1)  # the subject moved 2 px right
    moved = np.array([[1.0, 0.0, -2.0], [0.0, 1.0, 0.0]])  # frame 1 pixel -> frame 0 pixel
    assert warp_error([frame0, frame1], [frame0, frame1], [moved]) == 0.0
    # A result that stays where it was while the truth moves. Columns 0 and 1 of frame 1 have no
    # source in frame 0 and are left out (36 pixels remain). The result minus its warped previous
    # frame is -1 on the 4 pixels where the subject should have arrived (columns 3, 4) and +1 on
    # the 2 pixels of column 2 where it stayed; the truth's is 0: 6 / 36.
    error = warp_error([frame0, frame0], [frame0, frame1], [moved])
    assert error == pytest.approx(6 / 36)
    # With the identity flow nothing moves in the truth either.
    assert warp_error([frame0, frame0], [frame0, frame0], [IDENTITY]) == 0.0
    with pytest.raises(ValueError, match="N - 1 flows"):
        warp_error([frame0], [frame0], [IDENTITY])


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="one shape"):
        sad(np.zeros((2, 2)), np.zeros((2, 3)))
