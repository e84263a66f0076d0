"""The synthetic matte dailies: deterministic, composited exactly, a subject that reaches the edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import read_exr
from plateforge.shots.dailies import MatteShot, make_matte_shot, write_matte_shot

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def exact() -> MatteShot:
    return make_matte_shot(width=160, height=96, frames=4, seed=1, grain=0.0)


def test_same_seed_same_shot_other_seed_other_shot() -> None:
    a = make_matte_shot(width=96, height=64, frames=2, seed=3)
    b = make_matte_shot(width=96, height=64, frames=2, seed=3)
    c = make_matte_shot(width=96, height=64, frames=2, seed=4)
    for x, y in zip(a.plates + a.alphas + a.cleans, b.plates + b.alphas + b.cleans, strict=True):
        for name in x.channels:
            assert np.array_equal(x.channels[name], y.channels[name])
    assert not np.array_equal(a.alpha(1), c.alpha(1))


def test_plate_is_the_premultiplied_foreground_over_the_clean_plate(exact: MatteShot) -> None:
    for i in range(len(exact)):
        alpha = exact.alpha(i)
        fg = exact.foregrounds[i].stack(RGB)
        clean = exact.cleans[i].stack(RGB)
        plate = exact.plates[i].stack(RGB)
        expected = fg + (1 - alpha)[:, :, None] * clean
        # Stored as half, like dailies: equal to half precision.
        assert np.allclose(plate, expected, rtol=2e-3, atol=1e-4)
        assert np.array_equal(exact.foregrounds[i].channels["A"], alpha)
        assert np.all(fg >= 0) and np.all(fg <= alpha[:, :, None] * 10)
        replaced = exact.composite(i)
        assert np.allclose(replaced, fg + (1 - alpha)[:, :, None] * exact.backgrounds[i].stack(RGB))


def test_shadow_and_bounce_are_opt_in_and_composited_exactly() -> None:
    plain = make_matte_shot(width=128, height=80, frames=2, seed=2, grain=0.0)
    lit = make_matte_shot(width=128, height=80, frames=2, seed=2, grain=0.0, shadow=0.5, bounce=0.15)
    assert plain.set_light == [] and len(lit.set_light) == 2
    for i in range(2):
        # The subject, its alpha and the sets are the same shot; only the light on the set differs.
        assert np.array_equal(plain.alpha(i), lit.alpha(i))
        assert np.array_equal(plain.cleans[i].channels["R"], lit.cleans[i].channels["R"])
        alpha, light = lit.alpha(i), lit.set_light[i]
        assert light.min() < -0.1 and light.max() > 0.01  # a shadow and a bounce
        fg, clean = lit.foregrounds[i].stack(RGB), lit.cleans[i].stack(RGB)
        behind = (1 - alpha)[:, :, None]
        assert np.allclose(lit.plates[i].stack(RGB), fg + behind * (clean + light), rtol=2e-3, atol=1e-4)
        background = lit.backgrounds[i].stack(RGB)
        assert np.allclose(lit.composite(i), fg + behind * (background + light), atol=1e-6)
        assert np.allclose(plain.composite(i), fg + behind * background, atol=1e-6)
    with pytest.raises(ValueError, match="shadow must be in"):
        make_matte_shot(width=64, height=48, frames=1, shadow=1.5)


def test_alpha_has_soft_edges_hair_and_motion_blur(exact: MatteShot) -> None:
    alpha = exact.alpha(2)
    assert alpha.min() == 0.0 and alpha.max() == 1.0
    soft = (alpha > 0.02) & (alpha < 0.98)
    assert soft.sum() > 200, "edges, strands and motion blur give many partial pixels"
    thin = (alpha > 0.02) & (alpha < 0.5)
    assert thin.sum() > 50, "hair strands are partly transparent"


def test_the_subject_touches_the_frame_edges() -> None:
    shot = make_matte_shot(width=160, height=96, frames=6, seed=1)
    assert shot.crosses_side, "odd seeds walk the subject through a side of the frame"
    assert all(shot.alpha(i)[-1].max() == 1.0 for i in range(len(shot))), "the body runs out of the bottom edge"
    assert not make_matte_shot(width=160, height=96, frames=2, seed=2).crosses_side


def test_subject_flow_moves_the_subject_onto_itself(exact: MatteShot) -> None:
    """The known motion carries frame 1's subject onto frame 2's (up to blur and swaying hair)."""
    from plateforge_server.tools.matte.evaluation import _warp

    warped, inside = _warp(exact.alpha(1).astype(np.float64), exact.subject_flow(2, 1))
    moved = np.abs(warped - exact.alpha(2))[inside].mean()
    still = np.abs(exact.alpha(1) - exact.alpha(2))[inside].mean()
    assert moved < 0.35 * still


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="32x32"):
        make_matte_shot(width=16, height=96, frames=2)
    with pytest.raises(ValueError, match="grain"):
        make_matte_shot(width=96, height=64, frames=1, grain=float("nan"))


def test_written_files_read_back(tmp_path: Path) -> None:
    shot = make_matte_shot(width=64, height=48, frames=2, seed=0)
    patterns = write_matte_shot(shot, tmp_path)
    assert set(patterns) == {"plate", "clean", "alpha", "foreground", "background"}
    alpha = read_exr(tmp_path / "alpha.1002.exr")
    assert np.array_equal(alpha.channels["A"], shot.alpha(1))
    plate = read_exr(tmp_path / "plate.1001.exr")
    assert np.array_equal(plate.channels["R"], shot.plates[0].channels["R"])
