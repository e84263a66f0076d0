"""What the learned matte net reads: the plate, the clean plate, and the classical key as a guide.

The learned matte does not start from nothing, as the learned cleanup does not: the classical
difference key (:func:`plateforge_server.tools.matte.classical.key`, default settings) is computed
first and the net corrects it. Its one output is residual on the key's plane, so a fresh net gives
exactly the classical alpha and training (on the artist's keyframe mattes) only learns what the key
gets wrong on this shot: colours of the subject that match the set, hair, motion blur.

:func:`matte_planes` builds the :data:`MATTE_CHANNELS` planes, in this order:

====  =======================================================================================
0-2   the plate's R, G, B, scene-linear
3-5   the clean plate's R, G, B, scene-linear
6     the classical alpha in [0, 1]
====  =======================================================================================

Training (:mod:`plateforge_server.tools.matte.examples`) and the runtime
(:mod:`plateforge_server.tools.learned`) both call it; both encode every plane with
:func:`~plateforge_server.nets.unet.encode`.

**Only the unknown band is the net's.** :func:`unknown_band` is the trimap a compositor would draw
from the key: within :data:`BAND_OUTSIDE` pixels of anything the key calls subject, less the core
the key calls solid (eroded by :data:`BAND_INSIDE`). Inside the band the net's output, decoded and
clipped to [0, 1], is the alpha; outside it the classical key stands (:func:`merge`). Why: on the
synthetic dailies the band is about 5 % of the frame yet holds 97-100 % of the key's SAD (edges,
hair, motion blur; measured on seeds 0-2), so the few keyframes are spent where the key is wrong,
and whatever the net gets wrong elsewhere cannot add up over the other 95 % of a frame. Training
weighs the loss by the same band.

**A shadow is not the subject's core.** A difference key sees the subject's shadow on the set as
subject (the set got darker there), often solidly. Where the plate is the clean plate only darker,
the same colour at a lower level (:func:`shaded`: the per-channel ratio plate / clean, both
blurred against grain, below :data:`SHADE_MAX` and equal across R, G, B within
:data:`SHADE_SPREAD`), the key's solid core is not taken as certain: those pixels join the band,
so the net (taught by keyframe mattes where the shadow is alpha 0) decides them, and the shadow
itself rides into the comp in the signed foreground
(:func:`plateforge_server.tools.matte.classical.solve_foreground`). An untrained net still gives
the key there: a wider band never changes the start.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from plateforge_server.tools.matte.classical import KeySettings, key

__all__ = [
    "BAND_INSIDE",
    "BAND_OUTSIDE",
    "KEY_CHANNEL",
    "LIGHT_CHANNELS",
    "MATTE_CHANNELS",
    "SHADE_MAX",
    "SHADE_SPREAD",
    "band_of",
    "matte_planes",
    "merge",
    "shaded",
    "unknown_band",
]

#: Channels of :func:`matte_planes`.
MATTE_CHANNELS: Final = 7
#: The classical alpha's plane: the net's output is residual on it.
KEY_CHANNEL: Final = 6
#: Planes that hold light (exposure augmentation scales these only).
LIGHT_CHANNELS: Final = 6
#: Pixels the band reaches outside the key's support (faint hair and blur the key missed).
BAND_OUTSIDE: Final = 6
#: Pixels the key's solid core (alpha 1) is eroded by before it is taken as certain.
BAND_INSIDE: Final = 4
#: A pixel whose plate / clean ratio is below this (on every channel's mean) is darker than the set.
SHADE_MAX: Final = 0.97
#: ... and is shaded when its R, G, B ratios differ by less than this fraction of their mean.
SHADE_SPREAD: Final = 0.12
#: Blur (pixels) of both plates before their ratio, against grain.
_SHADE_BLUR = 1.5
#: Clean-plate light below which a channel's ratio is not trusted (grain and black).
_SHADE_FLOOR = 0.02


def _disk(radius: int) -> np.ndarray:
    kernel: np.ndarray = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return kernel


def matte_planes(plate: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``(H, W, 7)`` float32 planes (see the module doc) from ``plate`` and ``clean`` ``(H, W, 3)``."""
    alpha = key(plate, clean, KeySettings())
    planes = np.concatenate([plate, clean, alpha[:, :, None]], axis=2)
    return np.ascontiguousarray(planes, dtype=np.float32)


def shaded(plate: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: where the plate is the clean plate darker, same colour (see the module doc)."""
    p = cv2.GaussianBlur(
        np.ascontiguousarray(plate, np.float32), (0, 0), sigmaX=_SHADE_BLUR, borderType=cv2.BORDER_REFLECT
    )
    c = cv2.GaussianBlur(
        np.ascontiguousarray(clean, np.float32), (0, 0), sigmaX=_SHADE_BLUR, borderType=cv2.BORDER_REFLECT
    )
    trusted = c.min(axis=2) > _SHADE_FLOOR
    ratio = p / np.maximum(c, _SHADE_FLOOR)
    level = ratio.mean(axis=2)
    spread = ratio.max(axis=2) - ratio.min(axis=2)
    result: np.ndarray = trusted & (level < SHADE_MAX) & (spread < SHADE_SPREAD * np.maximum(level, 1e-6))
    return result


def unknown_band(key_alpha: np.ndarray, shade: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` bool: where the net decides the alpha (see the module doc), from the classical
    key and, when given, the :func:`shaded` pixels (never taken as the certain core)."""
    solid = key_alpha >= 1
    if shade is not None:
        solid &= ~shade
    support = cv2.dilate((key_alpha > 0).astype(np.uint8), _disk(BAND_OUTSIDE), borderType=cv2.BORDER_REPLICATE)
    core = cv2.erode(solid.astype(np.uint8), _disk(BAND_INSIDE), borderType=cv2.BORDER_REPLICATE)
    band: np.ndarray = (support > 0) & (core == 0)
    return band


def band_of(planes: np.ndarray) -> np.ndarray:
    """The :func:`unknown_band` of :func:`matte_planes` output, shaded pixels included."""
    return unknown_band(planes[:, :, KEY_CHANNEL], shaded(planes[:, :, 0:3], planes[:, :, 3:6]))


def merge(key_alpha: np.ndarray, predicted: np.ndarray, band: np.ndarray | None = None) -> np.ndarray:
    """The learned alpha: ``predicted`` (clipped to [0, 1]) inside ``band`` (by default the key's
    :func:`unknown_band`), the key elsewhere."""
    inside = np.clip(np.nan_to_num(predicted, nan=0.0), 0.0, 1.0)
    where = unknown_band(key_alpha) if band is None else band
    alpha: np.ndarray = np.where(where, inside, key_alpha).astype(np.float32)
    return alpha
