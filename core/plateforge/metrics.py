"""Image-quality metrics against ground truth: PSNR and SSIM, with optional mask weighting.

Both take ``(H, W, C)`` (or ``(H, W)``) float arrays of scene-linear values; when ``C >= 3`` only
the first three channels (R, G, B) are compared, so an RGBA or RGBAZ stack can be passed as is.
``mask`` is an ``(H, W)`` array of per-pixel weights in [0, 1] (a soft roto works as is): the
metric is the weighted mean over the pixels, so ``mask=roto`` measures a paint-out inside the roto
and ``mask=1 - roto`` checks nothing changed outside it.

Choices, so numbers compare across runs:

* :func:`psnr` measures the raw scene-linear values (no clipping, no tonemapping) against
  ``peak`` (1.0: diffuse white). Highlights above 1 therefore weigh in fully, as they do in a comp.
* :func:`ssim` is the standard Gaussian-window SSIM (Wang et al. 2004: 11-tap window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, dynamic range 1) computed per channel on values clipped to [0, 1] (SSIM's
  constants assume a bounded range; scene-linear values above 1 are highlights, clipped as a
  display would) and averaged over the channels. The window is applied with reflected edges, so
  the SSIM map has the image's size and the mask weights it pixel for pixel. Numpy only: the
  Gaussian is separable and applied along rows, then columns.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr", "ssim", "ssim_map"]

_K1, _K2 = 0.01, 0.03
_SIGMA, _TAPS = 1.5, 11


def _channels(array: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] < 1:
        raise ValueError(f"{name} must be an (H, W) or (H, W, C) array, got shape {np.shape(array)}")
    return a[:, :, :3]


def _pair(result: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, t = _channels(result, "result"), _channels(truth, "truth")
    if r.shape != t.shape:
        raise ValueError(f"result {np.shape(result)} and truth {np.shape(truth)} differ in shape")
    return r, t


def _weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    w = np.asarray(mask, dtype=np.float64)
    if w.ndim == 3 and w.shape[2] == 1:
        w = w[:, :, 0]
    if w.shape != shape[:2]:
        raise ValueError(f"mask of shape {np.shape(mask)} does not match images of shape {shape}")
    if not np.all(np.isfinite(w)) or w.min() < 0:
        raise ValueError("mask weights must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("mask selects no pixels (all weights are zero)")
    return w


def psnr(result: np.ndarray, truth: np.ndarray, *, mask: np.ndarray | None = None, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over R, G, B; ``inf`` when identical (where weighted).

    ``mask`` weights each pixel (all channels alike); the mean squared error is
    ``sum(w * (result - truth)**2) / (sum(w) * channels)``.
    """
    r, t = _pair(result, truth)
    w = _weights(mask, r.shape)
    squared = ((r - t) ** 2).mean(axis=2)
    mse = float(squared.mean()) if w is None else float((squared * w).sum() / w.sum())
    if not math.isfinite(mse):
        raise ValueError("result or truth holds NaN or Inf; PSNR is undefined")
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian_window() -> np.ndarray:
    x = np.arange(_TAPS, dtype=np.float64) - (_TAPS - 1) / 2
    g = np.exp(-(x * x) / (2 * _SIGMA * _SIGMA))
    window: np.ndarray = g / g.sum()
    return window


def _blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable filter of a 2-D image with reflected edges; same size out.

    A sum of shifted copies (one per tap), which is :func:`numpy.convolve` along each axis at once
    (the kernel is symmetric, so correlation and convolution agree).
    """
    pad = len(kernel) // 2
    padded = np.pad(image, pad, mode="reflect" if min(image.shape) > pad else "edge")
    height, width = image.shape
    rows = np.zeros((height + 2 * pad, width))
    for i, k in enumerate(kernel):
        rows += k * padded[:, i : i + width]
    out = np.zeros((height, width))
    for i, k in enumerate(kernel):
        out += k * rows[i : i + height, :]
    return out


def ssim_map(result: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The per-pixel SSIM, ``(H, W)``, averaged over R, G, B clipped to [0, 1]."""
    r, t = _pair(result, truth)
    r, t = np.clip(r, 0.0, 1.0), np.clip(t, 0.0, 1.0)
    kernel = _gaussian_window()
    c1, c2 = (_K1 * 1.0) ** 2, (_K2 * 1.0) ** 2
    total = np.zeros(r.shape[:2])
    for k in range(r.shape[2]):
        x, y = r[:, :, k], t[:, :, k]
        mx, my = _blur(x, kernel), _blur(y, kernel)
        sxx = _blur(x * x, kernel) - mx * mx
        syy = _blur(y * y, kernel) - my * my
        sxy = _blur(x * y, kernel) - mx * my
        total += ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    mean: np.ndarray = total / r.shape[2]
    return mean


def ssim(result: np.ndarray, truth: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean structural similarity (1.0: identical), weighted by ``mask`` when given."""
    r, _ = _pair(result, truth)
    w = _weights(mask, r.shape)
    values = ssim_map(result, truth)
    if w is None:
        return float(values.mean())
    return float((values * w).sum() / w.sum())
