"""Closed-form matting (Levin, Lischinski and Weiss, PAMI 2008), the matte bench's outside baseline.

The published method as :mod:`pymatting` implements it (``estimate_alpha_cf``: the matting
Laplacian solved by preconditioned conjugate gradients), given a trimap made automatically from
the clean plate, as a compositor with a clean pass would make it: the classical difference key
(:func:`plateforge_server.tools.matte.classical.key`, default settings) decides what is certainly
subject (its solid core, eroded) and certainly set (beyond its support, grown), and the band
between is unknown: :func:`plateforge_server.tools.matte.guide.band_of`, the same band the
learned matte decides. So the baseline and the learned matte differ only in how they solve the
band, never in who drew it.

pymatting assumes display-referred colours in [0, 1]; scene-linear plates are mapped there by
``x / (1 + x)`` per channel (negatives clipped to 0), which keeps highlights apart instead of
clipping them together. Only the alpha comes from pymatting; the foreground and composite are
made by :func:`~plateforge_server.tools.matte.classical.solve_foreground`, as for every method.
"""

from __future__ import annotations

import numpy as np

from plateforge.errors import UsageError
from plateforge_server.tools.matte.guide import KEY_CHANNEL, band_of, matte_planes

__all__ = ["closed_form_alpha", "trimap_from_clean_plate"]


def trimap_from_clean_plate(plate: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``(H, W)`` float64 trimap: 1 certainly subject, 0 certainly set, 0.5 unknown (see the module doc)."""
    planes = matte_planes(np.asarray(plate, np.float32), np.asarray(clean, np.float32))
    trimap = np.where(planes[:, :, KEY_CHANNEL] >= 1.0, 1.0, 0.0)
    trimap[band_of(planes)] = 0.5
    return trimap


def closed_form_alpha(plate: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """The closed-form matte of ``plate`` ``(H, W, 3)`` scene-linear with the automatic trimap,
    ``(H, W)`` float32 in [0, 1]."""
    try:  # imported here: a bench/test dependency (the dev extra), not the server's
        from pymatting import estimate_alpha_cf
    except ImportError as exc:
        raise UsageError(
            f"closed-form matting needs pymatting (in plateforge's dev extra: pip install -e '.[dev]'); {exc}"
        ) from None

    trimap = trimap_from_clean_plate(plate, clean)
    if not (trimap == 0.5).any():  # nothing unknown: the trimap is the matte
        return trimap.astype(np.float32)
    linear = np.nan_to_num(np.asarray(plate, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    display = np.maximum(linear, 0.0) / (1.0 + np.maximum(linear, 0.0))
    alpha = estimate_alpha_cf(np.ascontiguousarray(display), trimap)
    result: np.ndarray = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    return result
