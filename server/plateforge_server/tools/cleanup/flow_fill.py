"""Flow propagation for cleanup-classical: neighbours' pixels brought in along completed optical flow.

A global camera transform (see :mod:`plateforge_server.tools.cleanup.classical`) explains a flat
set or a distant one; it misplaces anything at another depth (a foreground that moves faster than
the background: parallax). For each neighbour this module measures what the transform leaves
over, per pixel:

1. The neighbour is first warped into the target by its global transform (or left where it is
   when none was found), so the flow measured is the *residual* motion: close to 0 where the
   transform is right, the parallax where it is not. Both images go to 8-bit log luminance with the
   masked pixels inpainted (so the rig, which moves on its own, does not drag the flow along), and
   OpenCV's DIS optical flow (Farnebäck where DIS is missing) runs both ways.
2. **Completion.** Under the target's mask (grown a little, because the flow near the rig is
   contaminated by it) the flow measures nothing useful; it is replaced by the flow of the hole's
   surroundings, diffused inwards (push-pull interpolation over an image pyramid,
   :func:`complete_flow`), the way flow-guided video inpainting completes flow before it
   propagates pixels. The backward flow is completed only under the neighbour's mask: elsewhere
   it is the neighbour's own measured motion.
3. **Consistency.** A target pixel ``p`` maps to ``q = p + f(p)`` in the warped neighbour. The
   backward flow there, measured on pixels the neighbour shows (a ``q`` on or next to the
   neighbour's mask is flagged ``hidden``: the neighbour does not show ``p``), must bring it back:
   ``|f(p) + b(q)|^2 < 0.01 (|f(p)|^2 + |b(q)|^2) + tolerance^2`` (Sundaram, Brox and Keutzer's
   check). Where the completed flow guessed wrong (an occluding edge next to the hole, something
   at another depth covering the source point) the neighbour's own motion there disagrees and
   the sample is rejected.
4. Where the completed residual is below :data:`RIGID_SNAP` pixels the global transform alone is
   used: its sub-pixel accuracy (ECC on the whole clear image) beats any per-pixel flow on a
   rigid scene, and DIS's noise of a tenth of a pixel would cost detail. (Smoothing the residual
   below the snap, to correct a transform another layer pulled a fraction of a pixel off, was
   measured on the tune footage and lost 0.2 dB.) A first look with DIS's fast preset skips the
   accurate flows for a neighbour whose residual stays well under the snap in the hole.

:func:`propagate` returns, per neighbour, the source coordinates of each masked target pixel
(in the neighbour's own pixel grid), whether the sample passed the check, and whether it came
from the flow or the global transform alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["RIGID_SNAP", "Propagation", "Target", "complete_flow", "consistent", "dense_flow", "prepare", "propagate"]

#: Residual flow (pixels) under which the global transform alone places the sample.
RIGID_SNAP = 2.0
#: Absolute slack (pixels) of the forward/backward check.
CONSISTENCY_TOLERANCE = 0.75
#: Pixels the target's mask is grown by before the flow under it is replaced by completion.
_FLOW_GUARD = 3
#: DIS's preset for the flow that places the samples: on a smooth two-layer scene the medium
#: preset's variational refinement placed them at 52 dB where the fast one reached 35 dB.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
#: The backward flow: the fast preset let through samples that cost the two-layer scene 8 dB.
CHECK_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
#: The preset of the first look that tells a rigid neighbour from one with parallax, and the share
#: of the snap its residual must stay under for the accurate flows to be skipped.
QUICK_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
QUICK_SHARE = 0.5
#: ... and the share of the hole's pixels allowed over it (the fast flow's stray vectors).
QUICK_OUTLIERS = 0.005
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
_LOG_FLOOR = 2.0**-10


@dataclass(frozen=True)
class Propagation:
    """One neighbour's samples for the masked target pixels ``where`` (rows, columns)."""

    #: ``(P,)`` float32 each: where to read the neighbour (its pixel grid, x and y).
    map_x: np.ndarray
    map_y: np.ndarray
    #: ``(P,)`` bool: the forward/backward check passed.
    consistent: np.ndarray
    #: ``(P,)`` bool: placed by the residual flow (True) or by the global transform alone (False).
    by_flow: np.ndarray
    #: ``(P,)`` bool: the flow lands on or next to the neighbour's own mask (it does not show the pixel).
    hidden: np.ndarray


def _luma8(rgb: np.ndarray, lo: float, hi: float) -> np.ndarray:
    luma = np.log2(np.maximum(rgb @ _LUMA, 0.0) + np.float32(_LOG_FLOOR))
    coded: np.ndarray = np.clip((luma - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    return coded


def _grow(holes: np.ndarray, pixels: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(holes.astype(np.uint8), kernel).astype(bool)


def dense_flow(first: np.ndarray, second: np.ndarray, preset: int = DIS_PRESET) -> np.ndarray:
    """``(H, W, 2)`` float32 flow from 8-bit ``first`` to ``second``: ``first(p) ~ second(p + flow(p))``."""
    if hasattr(cv2, "DISOpticalFlow_create"):
        dis = cv2.DISOpticalFlow_create(preset)
        flow: np.ndarray = dis.calc(first, second, None)
        return flow.astype(np.float32)
    start = np.zeros((*first.shape, 2), np.float32)
    flow = cv2.calcOpticalFlowFarneback(first, second, start, 0.5, 4, 15, 4, 5, 1.1, 0)
    return flow.astype(np.float32)


def complete_flow(flow: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``flow`` with the ``holes`` pixels replaced by the surrounding flow diffused inwards.

    Push-pull interpolation (normalised convolution over an image pyramid): the known flow is
    averaged down the pyramid with its weights, then each level fills its holes from the level
    below, so a hole takes the smooth continuation of its border's motion whatever its size; known
    pixels keep their measured flow exactly. A hole covering everything leaves zero flow.
    """
    out: np.ndarray = flow.copy()
    known = (~holes).astype(np.float32)
    if not holes.any():
        return out
    if not known.any():
        out[:] = 0.0
        return out
    values: list[np.ndarray] = [flow * known[:, :, None]]
    weights: list[np.ndarray] = [known]
    while min(weights[-1].shape) > 4:
        values.append(cv2.pyrDown(values[-1]))
        weights.append(cv2.pyrDown(weights[-1]))
    estimate = values[-1] / np.maximum(weights[-1], 1e-6)[:, :, None]
    for value, weight in zip(reversed(values[:-1]), reversed(weights[:-1]), strict=True):
        up = cv2.pyrUp(estimate, dstsize=(weight.shape[1], weight.shape[0]))
        share = np.minimum(weight * 4.0, 1.0)[:, :, None]  # a pixel a quarter known trusts itself
        estimate = share * (value / np.maximum(weight, 1e-6)[:, :, None]) + (1.0 - share) * up
    out[holes] = estimate[holes]
    return out


def consistent(forward: np.ndarray, backward: np.ndarray, tolerance: float = CONSISTENCY_TOLERANCE) -> np.ndarray:
    """``(P,)`` bool: forward vectors ``(P, 2)`` and the backward flow sampled at their ends ``(P, 2)`` cancel."""
    error = ((forward + backward) ** 2).sum(axis=1)
    scale = (forward**2).sum(axis=1) + (backward**2).sum(axis=1)
    passed: np.ndarray = error < 0.01 * scale + tolerance**2
    return passed


def _affine_points(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]).astype(np.float32),
        (matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]).astype(np.float32),
    )


def _prefilled(luma8: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """8-bit luminance with the rig inpainted, so it neither matches nor drags the flow."""
    if not holes.any() or holes.all():
        return luma8
    filled: np.ndarray = cv2.inpaint(luma8, holes.astype(np.uint8), 3.0, cv2.INPAINT_TELEA)
    return filled


@dataclass(frozen=True)
class Target:
    """What every neighbour's propagation reuses: the target's prepared luminance and its hole."""

    luma8: np.ndarray
    holes: np.ndarray  # the mask grown by the guard: where the forward flow is completed
    lo: float
    hi: float
    grid: tuple[np.ndarray, np.ndarray]  # every pixel's x and y, float32


def prepare(rgb: np.ndarray, mask: np.ndarray) -> Target:
    paint = mask > 0
    clear = ~paint
    luma = np.log2(np.maximum(rgb @ _LUMA, 0.0) + np.float32(_LOG_FLOOR))
    values = luma[clear] if clear.any() else luma.ravel()
    lo, hi = float(np.percentile(values, 0.5)), float(np.percentile(values, 99.5))
    luma8 = _prefilled(_luma8(rgb, lo, hi), _grow(paint, 1))
    grid = np.indices(paint.shape).astype(np.float32)
    return Target(luma8, _grow(paint, _FLOW_GUARD), lo, hi, (grid[1], grid[0]))


def propagate(
    target: Target,
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    matrix: np.ndarray | None,
    where: tuple[np.ndarray, np.ndarray],
    *,
    rigid_snap: float = RIGID_SNAP,
    tolerance: float = CONSISTENCY_TOLERANCE,
) -> Propagation:
    """Where each masked target pixel ``where`` is in the neighbour (see the module doc)."""
    base = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) if matrix is None else np.asarray(matrix, np.float64)
    # The neighbour warped into the target by the global transform (target pixel -> neighbour pixel).
    gx, gy = _affine_points(base, *target.grid)
    source8 = _prefilled(_luma8(source_rgb, target.lo, target.hi), _grow(source_mask > 0, 1))
    warped8 = cv2.remap(source8, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    warped_holes = (
        cv2.remap(
            (source_mask > 0).astype(np.uint8), gx, gy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=1
        )
        > 0
    )
    # The forward flow means something only where both images show the set (either rig drags
    # it); the backward one is kept wherever the neighbour shows it: the check compares the
    # completed forward flow with the neighbour's own measured motion, never with a completion.
    source_unknown = _grow(warped_holes, _FLOW_GUARD)
    ys, xs = where
    # A quick look first (the fast preset, a fifth of the cost): where the residual stays well
    # under the snap nearly everywhere in the hole the scene is rigid here, and the global
    # transform places every sample without the accurate flows.
    quick = complete_flow(dense_flow(target.luma8, warped8, QUICK_PRESET), target.holes | source_unknown)
    off = np.hypot(quick[ys, xs, 0], quick[ys, xs, 1]) >= QUICK_SHARE * rigid_snap
    if int(off.sum()) <= QUICK_OUTLIERS * len(ys):
        rigid_x, rigid_y = _affine_points(base, xs.astype(np.float32), ys.astype(np.float32))
        nowhere = np.zeros(len(ys), bool)
        return Propagation(rigid_x, rigid_y, np.ones(len(ys), bool), nowhere, nowhere)
    forward = complete_flow(dense_flow(target.luma8, warped8), target.holes | source_unknown)
    backward = complete_flow(dense_flow(warped8, target.luma8, CHECK_PRESET), source_unknown)

    f = forward[ys, xs]
    qx = xs.astype(np.float32) + f[:, 0]
    qy = ys.astype(np.float32) + f[:, 1]
    back = np.stack(
        [
            cv2.remap(backward[:, :, k], qx[None, :], qy[None, :], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
            for k in range(2)
        ],
        axis=1,
    )
    landed_unknown = (
        cv2.remap(
            source_unknown.astype(np.uint8), qx[None, :], qy[None, :], cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT, borderValue=1,
        )[0]
        > 0
    )  # fmt: skip
    passed = consistent(f, back, tolerance) & ~landed_unknown
    by_flow = np.hypot(f[:, 0], f[:, 1]) >= rigid_snap
    px = np.where(by_flow, qx, xs.astype(np.float32))
    py = np.where(by_flow, qy, ys.astype(np.float32))
    map_x, map_y = _affine_points(base, px, py)
    return Propagation(map_x, map_y, passed, by_flow, landed_unknown)
