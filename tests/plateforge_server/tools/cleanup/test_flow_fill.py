"""Flow propagation in cleanup-classical, on small two-layer scenes with exact ground truth.

Each scene is a textured background and a textured foreground block moving at different speeds
(parallax), rendered by whole-pixel shifts so every clean frame is exact. A global camera
transform explains the background (most of the frame), not the block: only per-pixel flow, which
the tool completes under the mask, puts the block's pixels back where they belong.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.tools.cleanup import flow_fill

WIDTH, HEIGHT, FRAMES = 160, 112, 5
BG_SPEED, FG_SPEED = 2, 7  # pixels a frame, to the right
BLOCK = (40, 28, 72, 56)  # x, y, width, height of the foreground block in the middle frame


def _texture(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth multi-scale colour texture in 0.05..0.95: trackable, and smooth enough to resample."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for sigma, weight in ((6.0, 0.6), (2.0, 0.4)):
        noise = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), sigma)
        noise = (noise - noise.min()) / (noise.max() - noise.min())
        out += weight * noise
    return (0.05 + 0.9 * out).astype(np.float32)


BG = _texture(1, HEIGHT, WIDTH + FRAMES * BG_SPEED + 8)
FG = _texture(2, BLOCK[3], BLOCK[2])


def _clean(t: int) -> np.ndarray:
    """Frame ``t``: the background moved right by BG_SPEED a frame, the block by FG_SPEED."""
    shift = (t - FRAMES // 2) * BG_SPEED
    start = FRAMES * BG_SPEED // 2 + 4 - shift
    frame = BG[:, start : start + WIDTH].copy()
    x, y, w, h = BLOCK
    fx = x + (t - FRAMES // 2) * FG_SPEED
    frame[y : y + h, fx : fx + w] = FG
    return frame


def _band(x: int, width: int = 3) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    mask[BLOCK[1] + 6 : BLOCK[1] + BLOCK[3] - 6, x : x + width] = 1.0
    return mask


def _scene() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A band on the block, riding with it in frames 1-3 (so it covers the same block pixels: the
    near frames never show what it hides there) and elsewhere in frames 0 and 4."""
    cleans = [_clean(t) for t in range(FRAMES)]
    masks = []
    for t in range(FRAMES):
        if 1 <= t <= 3:
            masks.append(_band(BLOCK[0] + 30 + (t - FRAMES // 2) * FG_SPEED))
        else:
            masks.append(_band(8))  # far from the block, on the background
    plates = [np.where(m[:, :, None] > 0, np.float32(0.01), c) for c, m in zip(cleans, masks, strict=True)]
    return plates, masks, cleans


def _fill(flow: bool) -> tuple[cleanup_classical.Fill, np.ndarray, np.ndarray]:
    plates, masks, cleans = _scene()
    k = FRAMES // 2
    near = [1, 3, 0, 4]
    neighbours = [(plates[j], masks[j]) for j in near]
    matrices = cleanup_classical.align_neighbours(plates[k], masks[k], neighbours)
    fill = cleanup_classical.fill_plate(plates[k], masks[k], neighbours, matrices, flow=flow)
    return fill, masks[k] > 0, cleans[k]


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / ((a[where] - b[where]) ** 2).mean()))


def test_the_global_transform_follows_the_background() -> None:
    plates, masks, _ = _scene()
    matrices = cleanup_classical.align_neighbours(plates[2], masks[2], [(plates[0], masks[0])])
    assert matrices[0] is not None
    # Frame 0 sees the background 2 frames * 2 px to the left of where frame 2 sees it.
    assert abs(matrices[0][0, 2] + 2 * BG_SPEED) < 0.3


def test_flow_fills_the_hole_from_the_far_frames_along_the_parallax() -> None:
    """The near frames (1, 3) cover the same block pixels as the target; the far ones (0, 4) show
    them, 14 px away, where no global transform puts them. Along the completed flow the fill is
    close to exact; the global transform alone fills from the wrong place."""
    fill, hole, truth = _fill(flow=True)
    assert fill.stage is not None
    assert fill.fractions()["flow"] > 0.95
    assert fill.fractions()["spatial"] == 0.0
    flowed = _psnr(fill.rgb, truth, hole)
    assert flowed > 38.0, flowed

    rigid, _, _ = _fill(flow=False)
    assert rigid.fractions()["flow"] == 0.0
    assert flowed > _psnr(rigid.rgb, truth, hole) + 12.0


def test_consistency_check_rejects_an_occluded_source() -> None:
    """A target pixel whose set point another layer hides in the neighbour maps (by the completed
    flow) onto that layer; the layer's own motion there does not bring it back: rejected."""
    plates, _, cleans = _scene()
    target_mask = _band(8)  # over the background, left of the block
    target = flow_fill.prepare(plates[0], target_mask)
    ys, xs = np.nonzero(target_mask > 0)
    # Frame 0 -> frame 4: the background moves 8 px right, the block 28 px (from x = 26-97 to
    # 54-125). Background just right of the block in frame 0 (x = 106) is under it in frame 4.
    occluded_mask = _band(106)
    oys, oxs = np.nonzero(occluded_mask > 0)
    matrix = np.array([[1.0, 0.0, 4.0 * BG_SPEED], [0.0, 1.0, 0.0]])
    source_rgb, source_mask = cleans[4], np.zeros((HEIGHT, WIDTH), np.float32)
    clear = flow_fill.propagate(target, source_rgb, source_mask, matrix, (ys, xs))
    assert clear.consistent.mean() > 0.95

    target = flow_fill.prepare(cleans[0], occluded_mask)
    hidden = flow_fill.propagate(target, source_rgb, source_mask, matrix, (oys, oxs))
    on_block = (hidden.map_x >= BLOCK[0] + 2 * FG_SPEED + 2) & (hidden.map_x < BLOCK[0] + 2 * FG_SPEED + BLOCK[2] - 2)
    assert on_block.mean() > 0.9
    # Flow blurs motion boundaries over a DIS patch or two: a few pixels next to the block's top
    # and bottom edges may pass; none well inside it does.
    inside = on_block & (oys >= BLOCK[1] + 16) & (oys < BLOCK[1] + BLOCK[3] - 16)
    assert inside.sum() > 50
    assert not hidden.consistent[inside].any()
    assert hidden.consistent[on_block].mean() < 0.25


def test_consistent_is_the_forward_backward_check() -> None:
    forward = np.array([[5.0, 0.0], [5.0, 0.0], [0.0, 0.0]], np.float32)
    backward = np.array([[-5.0, 0.1], [3.0, 0.0], [0.5, 0.0]], np.float32)
    assert flow_fill.consistent(forward, backward).tolist() == [True, False, True]


def test_complete_flow_continues_the_border_motion() -> None:
    flow = np.zeros((64, 64, 2), np.float32)
    flow[:, :, 0] = np.linspace(0, 6, 64, dtype=np.float32)[None, :]
    flow[:, :, 1] = -2.0
    holes = np.zeros((64, 64), bool)
    holes[20:44, 28:34] = True
    damaged = flow.copy()
    damaged[holes] = 40.0
    completed = flow_fill.complete_flow(damaged, holes)
    assert np.array_equal(completed[~holes], flow[~holes])
    assert np.abs(completed[holes] - flow[holes]).max() < 0.3


@pytest.mark.parametrize("flow", [True, False])
def test_no_neighbours_is_spatial(flow: bool) -> None:
    plates, masks, _ = _scene()
    fill = cleanup_classical.fill_plate(plates[2], masks[2], [], [], flow=flow)
    assert fill.fractions() == {"flow": 0.0, "homography": 0.0, "fallback": 0.0, "spatial": 1.0}
