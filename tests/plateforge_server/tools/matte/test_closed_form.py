"""The closed-form matting baseline (pymatting) on a tiny synthetic image with an exact alpha."""

from __future__ import annotations

import numpy as np

from plateforge.shots.dailies import make_matte_shot
from plateforge_server.tools.matte.classical import key
from plateforge_server.tools.matte.closed_form import closed_form_alpha, trimap_from_clean_plate
from plateforge_server.tools.matte.evaluation import sad
from plateforge_server.tools.matte.guide import band_of, matte_planes

RGB = ("R", "G", "B")


def test_the_trimap_comes_from_the_clean_plate_difference() -> None:
    shot = make_matte_shot(width=64, height=48, frames=1, seed=0, grain=0.0)
    plate, clean = shot.plates[0].stack(RGB), shot.cleans[0].stack(RGB)
    trimap = trimap_from_clean_plate(plate, clean)
    planes = matte_planes(plate, clean)
    assert set(np.unique(trimap)) <= {0.0, 0.5, 1.0}
    assert np.array_equal(trimap == 0.5, band_of(planes))
    truth = shot.alpha(0)
    # Certain pixels are nearly all right: subject where the trimap says 1, set where it says 0
    # (an automatic trimap is the key's word, wrong on a few pixels: the key is not perfect).
    assert np.mean(truth[trimap == 1.0] > 0.95) > 0.99 and np.mean(truth[trimap == 0.0] < 0.05) > 0.99
    assert (trimap == 1.0).sum() > 100 and (trimap == 0.5).sum() > 100


def test_closed_form_solves_the_unknown_band_better_than_the_key() -> None:
    shot = make_matte_shot(width=64, height=48, frames=1, seed=0, grain=0.0)
    plate, clean = shot.plates[0].stack(RGB), shot.cleans[0].stack(RGB)
    alpha = closed_form_alpha(plate, clean)
    truth = shot.alpha(0)
    trimap = trimap_from_clean_plate(plate, clean)
    assert alpha.shape == truth.shape and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert np.array_equal(alpha[trimap != 0.5], trimap[trimap != 0.5].astype(np.float32))
    band = trimap == 0.5
    inside = alpha[band]
    assert np.mean((inside > 0.01) & (inside < 0.99)) > 0.2, "closed form gives soft values in the band"
    assert sad(alpha, truth) < sad(key(plate, clean), truth)
