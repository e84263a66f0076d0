"""Shift consistency: a term that teaches a net its answer moves with the picture (temporal
stability).

A camera move shifts the plate by fractions of a pixel from frame to frame, and the truth of a
relight or grade shifts with it. A conv net with stride-2 downsampling and nearest upsampling
(:class:`plateforge_server.nets.unet.UNet`) is not shift-equivariant: moved by a pixel that is not
a multiple of its ``2 ** depth`` grid, its output changes by more than the move. Its errors then
swim against the picture from frame to frame, which the bench's warp error measures
(:mod:`plateforge_server.tools.relight.evaluation`: each frame's result warped onto the next with the
exact camera motion, less the same for the truth) and an artist sees as flicker. The fitted affine
that a ``classical_start`` net begins as commutes with any warp, so on the tune shots the learned
relight, far closer to the truth, still flickered about twice as much as the affine.

The term, on a training batch: move the inputs by a random translation of up to :data:`MAX_SHIFT`
pixels each way (bilinear, in scene-linear light: what a camera move does to the plate and its AOVs
to first order), run the net on them, and compare that with the net's own output on the unmoved
inputs moved the same way. The L1 of the difference (encoded values, as the rest of the loss) over
the pixels the move fills from inside the crop (the strip it pulls in from outside is invented, so
it is left out, as the warp error leaves it out), times ``temporal_weight``, is added to the loss.
The crop's edges stay where they are while the picture moves, as a frame's edges do under a camera
pan, so the term also teaches the net to keep what it does near an edge (zero padding, the edge of
its context) from swimming with the picture: on tune shot 100 the frame's outer 8 pixels held 39 %
of the learned relight's warp error. It needs no target and no second frame: it holds the net to
the symmetry the truth has. An untrained ``classical_start`` net (the affine) scores 0 on it.

The relight's defaults no longer use it (``temporal_weight`` 0): an equivariant net
(:class:`plateforge_server.nets.unet.UNetConfig` ``equivariant``) gets the symmetry from its layout
at one net pass a step, and a served dead zone (``residual_dead_zone``) drops the small
corrections that flickered most, leaving the affine there
(:data:`plateforge_server.training.defaults.TOOL_DEFAULTS` says what was measured). The term stays
for runs that ask for it.
"""

from __future__ import annotations

from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

from plateforge_server.nets.unet import decode, encode

__all__ = ["MAX_SHIFT", "moved_inside", "shift_consistency", "translate"]

#: Largest translation (pixels, each axis) of the moved copy: covers every phase of a net whose
#: coarsest grid is 8 pixels (depth 3) in either direction, and whole-pixel moves as well as fractions.
MAX_SHIFT: Final = 4.0


def _grid(shift: torch.Tensor, shape: list[int], like: torch.Tensor) -> torch.Tensor:
    count, _, height, width = shape
    theta = torch.zeros(count, 2, 3, dtype=like.dtype, device=like.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # affine_grid's normalised coordinates span 2 over the side; sampling at x - dx moves the image by +dx.
    theta[:, 0, 2] = -2.0 * shift[:, 0].to(like) / width
    theta[:, 1, 2] = -2.0 * shift[:, 1].to(like) / height
    return F.affine_grid(theta, shape, align_corners=False)


def translate(encoded: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` encoded planes moved by ``shift`` ``(N, 2)`` pixels (x right, y down) with
    bilinear sampling in scene-linear light (edges repeat); encoded again."""
    linear = decode(encoded.float())
    grid = _grid(shift, list(linear.shape), linear)
    moved = F.grid_sample(linear, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return encode(moved).to(encoded.dtype)


def moved_inside(shift: torch.Tensor, shape: list[int], like: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` bool: the pixels a move by ``shift`` fills from inside the picture (the rest
    it invents by repeating the edge), as the bench's warp error keeps only those."""
    ones = torch.ones(shape[0], 1, shape[2], shape[3], dtype=like.dtype, device=like.device)
    grid = _grid(shift, list(ones.shape), ones)
    covered = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside: torch.Tensor = covered >= 0.999
    return inside


def shift_consistency(
    model: nn.Module, inputs: torch.Tensor, output: torch.Tensor, *, seed: int, step: int
) -> torch.Tensor:
    """The mean ``|net(move(inputs)) - move(output)|`` over the pixels the move fills from inside
    the crop (see the module doc), float32; ``output`` is ``model(inputs)``. The moves are drawn
    from a generator of their own, seeded by the run's seed and the step: torch's global generator
    is shared with whatever else runs in the process, which made two runs of one config differ (and
    a resumed step draws the same moves as the first try)."""
    count = inputs.shape[0]
    generator = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + step)
    shift = ((torch.rand(count, 2, generator=generator) * 2.0 - 1.0) * MAX_SHIFT).to(inputs.device)
    moved: torch.Tensor = model(translate(inputs, shift))
    expected = translate(output, shift)
    inside = moved_inside(shift, list(output.shape), expected.float()).expand_as(expected)
    difference = (moved.float() - expected.float()).abs()
    term: torch.Tensor = (difference * inside).sum() / inside.sum().clamp_min(1)
    return term
