"""Perceptual colour difference for the relight and look benchmarks: CIELAB and CIEDE2000.

:func:`delta_e2000` is the CIEDE2000 colour difference (CIE 142-2001), written from the formula
as Sharma, Wu and Dalal set it out ("The CIEDE2000 color-difference formula: implementation
notes, supplementary test data, and mathematical observations", Color Research & Application
30(1), 2005, equations 1-22), with kL = kC = kH = 1. The two places implementations usually go
wrong are handled as the paper says: a hue is 0 where a' and b are both 0, and the mean hue and
hue difference of a pair where either chroma is 0 are the plain sum and 0. The tests check it
against the paper's 34 reference pairs (Table 1) to 1e-4.

:func:`lab_from_linear` takes scene-linear Rec.709 (the plates' colour space) to CIELAB with
diffuse white (1.0) as the reference white, D65. Scene-linear values above 1 give L* above 100:
a highlight difference counts in full, as in the PSNR the benchmarks report next to it.

:func:`display_psnr` is PSNR through the view an artist judges by: both images clipped to
[0, 1] and encoded with the sRGB transfer function (IEC 61966-2-1, the standard view of a
scene-linear Rec.709 plate on an sRGB monitor), not quantised, peak 1. An error in the shadows
weighs more than the same scene-linear error in the highlights, as on screen; values above 1 clip,
as the view clips them.
"""

from __future__ import annotations

import numpy as np

from plateforge.metrics import psnr

__all__ = ["delta_e2000", "delta_e2000_image", "display_encode", "display_psnr", "lab_from_linear"]

#: Linear Rec.709 / sRGB primaries, D65, to CIE XYZ (IEC 61966-2-1).
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
#: The D65 white point, Y = 1.
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_EPSILON = (6.0 / 29.0) ** 3


def lab_from_linear(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` scene-linear Rec.709 -> ``(..., 3)`` CIELAB (L*, a*, b*), float64."""
    xyz = np.asarray(rgb, np.float64) @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    lab: np.ndarray = np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )
    return lab


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between ``(..., 3)`` CIELAB arrays, element-wise: ``(...)`` float64."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    if lab1.shape != lab2.shape or lab1.shape[-1:] != (3,):
        raise ValueError(f"delta_e2000 needs two (..., 3) Lab arrays of one shape, got {lab1.shape} and {lab2.shape}")
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    # (2)-(7): a' scaled by G, which depends on the pair's mean chroma.
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_mean**7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360)
    # (8)-(11): differences.
    dl = l2 - l1
    dc = c2p - c1p
    chroma_zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_zero, 0.0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    # (12)-(22): weights and the rotation term.
    l_mean = (l1 + l2) / 2
    cp_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_mean = np.where(chroma_zero, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    cp7 = cp_mean**7
    rc = 2 * np.sqrt(cp7 / (cp7 + 25.0**7))
    sl = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    sc = 1 + 0.045 * cp_mean
    sh = 1 + 0.015 * cp_mean * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    lightness, chroma, hue = dl / sl, dc / sc, dhh / sh
    result: np.ndarray = np.sqrt(np.maximum(lightness**2 + chroma**2 + hue**2 + rt * chroma * hue, 0.0))
    return result


def delta_e2000_image(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 over the pixels of two ``(H, W, >=3)`` scene-linear Rec.709 images."""
    if result.shape[:2] != truth.shape[:2]:
        raise ValueError(f"result {result.shape} and truth {truth.shape} differ in size")
    return float(delta_e2000(lab_from_linear(result[..., :3]), lab_from_linear(truth[..., :3])).mean())


def display_encode(linear: np.ndarray) -> np.ndarray:
    """``(..., C)`` scene-linear Rec.709 -> the sRGB view's code values in [0, 1], float64, not quantised."""
    x = np.clip(np.nan_to_num(np.asarray(linear, np.float64), nan=0.0), 0.0, 1.0)
    encoded: np.ndarray = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return encoded


def display_psnr(result: np.ndarray, truth: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """PSNR in dB (peak 1) of two ``(H, W, >=3)`` scene-linear images after the sRGB view
    (:func:`display_encode`), over R, G, B, weighted by ``mask`` where given (as
    :func:`plateforge.metrics.psnr` weights it)."""
    if result.shape[:2] != truth.shape[:2]:
        raise ValueError(f"result {result.shape} and truth {truth.shape} differ in size")
    return psnr(display_encode(result[..., :3]), display_encode(truth[..., :3]), mask=mask)
