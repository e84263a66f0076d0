"""Tiled inference: a frame of any size through a net, in overlapping tiles with feathered seams.

A 4K float plate does not fit through a U-Net in one piece on every GPU, and never at once on a
laptop, so frames are cut into tiles, run in batches and blended back. Done right, the seams are
invisible *and* the result is the untiled result. How :func:`run_tiled` cuts a frame:

1. **Pad like the net.** The frame is padded at the bottom and right to a multiple of the net's
   ``size_multiple`` with the net's own ``pad`` -- exactly what its forward does to a whole frame
   -- so tiles on the bottom and right edges see what the whole frame would, not new padding.
2. **Aligned tiles.** ``tile`` is rounded down and ``overlap`` up to multiples of
   ``size_multiple``, so every tile starts on the net's downsampling grid and its pixels meet the
   same pooling phases they meet in the whole frame.
3. **Edges shifted inward.** Tiles start every ``tile - overlap`` pixels; the last row and column
   are shifted inward to end on the frame's edge (overlapping their neighbours by more) instead
   of hanging over it, so no tile is ever padded with invented pixels. A frame no larger than one
   tile is one tile: the net sees it whole.
4. **Feathered blend.** A tile's weight is 1 except next to an edge it shares with a neighbour.
   There it is 0 for ``margin`` pixels, then rises over ``feather`` pixels as a raised cosine
   (``sin**2``), whose mirror image is the neighbour's falling ramp: across a regular overlap the
   two weights sum to exactly 1, and a pixel only one tile covers has weight exactly 1. The
   result is ``sum(weight * tile) / sum(weight)``, so the larger overlaps of the shifted edge
   tiles blend correctly too.

**Exact when the overlap allows.** A tile's output is wrong (zero padding where the frame has
pixels) within ``receptive_field`` pixels of an edge it shares with a neighbour, and two
neighbours need that much each, so with ``overlap >= 2 * receptive_field`` the margin is the
receptive field, the rest of the overlap is feather, and every output pixel is blended only from
tiles that saw its whole receptive field: tiled equals untiled up to float rounding (the tests
allow 1e-3 at 301x517 and at 4K; measured: at most 4e-6, where CPU convolutions round
differently for different tile sizes). The default overlap is that exact one. It is not free:
the medium U-Net's radius is 137 pixels, so the default overlap is 288, a 512 tile adds 224 new
pixels a side, and a 4K frame takes 153 tiles, 4.5x the pixels of one untiled pass (the small
U-Net: 50 tiles, 1.5x). A bigger ``tile`` (1024 on a large GPU) cuts that to about 2x; a
smaller ``overlap`` (say 64) switches to an approximate blend: margin 0, the whole overlap
cross-fades, which hides seams because a trained net's output barely depends on pixels that far
away (an assumption about trained nets, not something the tests here measure).

Runs under :func:`torch.inference_mode`. On a CUDA device ``dtype=torch.float16`` runs the net
under fp16 autocast; on CPU the net runs float32 and the result is deterministic. Blending is
always float32, on the frame's device, so a 4K frame can stay in host memory while tiles go to
the GPU.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from plateforge.errors import CancelledError, FrameError, NonFiniteError, UsageError
from plateforge_server.nets.unet import decode, encode

__all__ = ["TilePlan", "TileableNet", "plan_tiles", "run_on_frame_arrays", "run_tiled"]

#: Called after each batch of tiles with (tiles done, tiles in all). It may raise CancelledError.
Progress = Callable[[int, int], None]
#: Polled before each batch of tiles; True stops the run with CancelledError.
Cancelled = Callable[[], bool]


class TileableNet(Protocol):
    """What :func:`run_tiled` needs of a net; :class:`plateforge_server.nets.unet.UNet` has it all."""

    @property
    def receptive_field(self) -> int:
        """Radius in pixels: an output pixel depends only on input pixels at most this far away."""
        ...

    @property
    def size_multiple(self) -> int:
        """Forward pads H and W up to a multiple of this; tiles are aligned to it."""
        ...

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """The padding forward applies to a whole frame."""
        ...

    def parameters(self, recurse: bool = ...) -> Iterator[nn.Parameter]: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one (padded) frame go and how they are weighted."""

    height: int  # the padded frame's height: a multiple of the net's size_multiple
    width: int  # the padded frame's width
    tile_height: int  # every tile's height (the frame's, when one tile spans it)
    tile_width: int  # every tile's width
    rows: tuple[int, ...]  # top edges of the tile rows, ascending, the last at height - tile_height
    cols: tuple[int, ...]  # left edges of the tile columns, likewise
    margin: int  # weight-0 pixels next to an edge shared with a neighbour
    feather: int  # pixels over which the weight then rises from 0 to 1

    @property
    def origins(self) -> list[tuple[int, int]]:
        """(top, left) of every tile, row by row."""
        return [(y, x) for y in self.rows for x in self.cols]

    def weight(self, top: int, left: int) -> torch.Tensor:
        """The blend weight of the tile at (top, left): ``(tile_height, tile_width)`` float32."""
        vertical = self._ramp(self.tile_height, lead=top > 0, trail=top + self.tile_height < self.height)
        horizontal = self._ramp(self.tile_width, lead=left > 0, trail=left + self.tile_width < self.width)
        return vertical[:, None] * horizontal[None, :]

    def weight_sum(self) -> torch.Tensor:
        """Sum of every tile's weight over the padded frame, ``(height, width)``; positive everywhere."""
        total = torch.zeros(self.height, self.width)
        for top, left in self.origins:
            total[top : top + self.tile_height, left : left + self.tile_width] += self.weight(top, left)
        return total

    def _ramp(self, length: int, *, lead: bool, trail: bool) -> torch.Tensor:
        """1-D weight along a tile: ramps where a neighbour comes before (lead) or after (trail)."""
        centres = (torch.arange(self.feather, dtype=torch.float64) + 0.5) / max(self.feather, 1)
        rise = torch.cat([torch.zeros(self.margin, dtype=torch.float64), torch.sin(centres * math.pi / 2) ** 2])
        weight = torch.ones(length, dtype=torch.float64)
        if lead:
            weight[: rise.numel()] *= rise
        if trail:
            weight[length - rise.numel() :] *= rise.flip(0)
        return weight.float()


def plan_tiles(
    height: int, width: int, *, tile: int, overlap: int | None, receptive_field: int, size_multiple: int
) -> TilePlan:
    """The tiles for a ``height`` x ``width`` frame (before padding), per the module docstring.

    ``overlap=None`` is the exact overlap, ``2 * receptive_field``. Refuses a tile smaller than
    ``size_multiple`` and an overlap that leaves a tile no new pixels, naming the numbers.
    """
    if height < 1 or width < 1:
        raise FrameError(f"cannot tile an empty {height}x{width} frame")
    if tile < size_multiple:
        raise UsageError(f"tile {tile} is smaller than the net's size multiple {size_multiple}; use a larger tile")
    exact = 2 * receptive_field
    wanted = exact if overlap is None else overlap
    if wanted < 0:
        raise UsageError(f"overlap must be >= 0, got {wanted}")
    tile -= tile % size_multiple
    overlap = -(-wanted // size_multiple) * size_multiple
    padded_height = -(-height // size_multiple) * size_multiple
    padded_width = -(-width // size_multiple) * size_multiple
    tile_height, tile_width = min(tile, padded_height), min(tile, padded_width)
    stride = tile - overlap
    if (padded_height > tile or padded_width > tile) and stride < size_multiple:
        raise UsageError(
            f"overlap {overlap} leaves tile {tile} no new pixels (the net needs {exact} for exact "
            f"results, {receptive_field} each side); use a tile larger than {overlap + size_multiple - 1} "
            "or a smaller overlap"
        )
    margin = receptive_field if overlap >= exact else 0
    return TilePlan(
        height=padded_height,
        width=padded_width,
        tile_height=tile_height,
        tile_width=tile_width,
        rows=_starts(padded_height, tile_height, stride),
        cols=_starts(padded_width, tile_width, stride),
        margin=margin,
        feather=overlap - 2 * margin,
    )


def _starts(length: int, size: int, stride: int) -> tuple[int, ...]:
    """Tile starts along one axis: every ``stride``, the last shifted to end at ``length``."""
    if length <= size:
        return (0,)
    return (*range(0, length - size, stride), length - size)


def run_tiled(
    net: TileableNet,
    image: torch.Tensor,
    *,
    tile: int = 512,
    overlap: int | None = None,
    batch: int = 4,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
) -> torch.Tensor:
    """``net`` over ``image`` (``(C, H, W)`` or ``(N, C, H, W)``, any H and W) in tiles, blended.

    ``tile``: tile size in pixels (rounded down to the net's size multiple). ``overlap``: pixels
    neighbouring tiles share (rounded up likewise); None is the exact ``2 * net.receptive_field``.
    ``batch``: tiles per forward pass. ``device``: where the net runs; None, or the net's own
    device (it is not moved). ``dtype``: None or float32; float16 (CUDA only) runs under fp16
    autocast. ``progress(done, total)`` is called after each batch; ``cancelled()`` is polled
    before each and, once true, stops the run with :class:`CancelledError`.

    Returns float32 on ``image``'s device, shaped like ``image`` with the net's output channels.
    The caller puts the net in eval mode; values are whatever the net takes (encoded, for the
    project's nets: see :func:`run_on_frame_arrays`).
    """
    if image.ndim == 3:
        return run_tiled(
            net,
            image[None],
            tile=tile,
            overlap=overlap,
            batch=batch,
            device=device,
            dtype=dtype,
            progress=progress,
            cancelled=cancelled,
        )[0]
    if image.ndim != 4:
        raise FrameError(f"run_tiled expects (C, H, W) or (N, C, H, W); got shape {tuple(image.shape)}")
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    compute = _compute_device(net, device)
    autocast = _autocast(compute, dtype)
    count, _, height, width = image.shape
    plan = plan_tiles(
        height, width, tile=tile, overlap=overlap, receptive_field=net.receptive_field, size_multiple=net.size_multiple
    )
    jobs = [(n, top, left) for n in range(count) for top, left in plan.origins]
    th, tw = plan.tile_height, plan.tile_width
    with torch.inference_mode():
        padded = net.pad(image.float())
        out: torch.Tensor | None = None
        for start in range(0, len(jobs), batch):
            if cancelled is not None and cancelled():
                raise CancelledError(f"tiled inference cancelled after {start} of {len(jobs)} tiles")
            chunk = jobs[start : start + batch]
            tiles = torch.stack([padded[n, :, y : y + th, x : x + tw] for n, y, x in chunk]).to(compute)
            with autocast:
                result = net(tiles)
            result = result.float().to(image.device)
            if out is None:
                out = torch.zeros(count, result.shape[1], plan.height, plan.width, device=image.device)
            for k, (n, y, x) in enumerate(chunk):
                out[n, :, y : y + th, x : x + tw] += result[k] * plan.weight(y, x).to(image.device)
            if progress is not None:
                progress(start + len(chunk), len(jobs))
        assert out is not None  # there is always at least one tile
        out /= plan.weight_sum().to(image.device)
        return out[:, :, :height, :width]


def run_on_frame_arrays(
    net: TileableNet,
    planes: np.ndarray,
    *,
    tile: int = 512,
    overlap: int | None = None,
    batch: int = 4,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
) -> np.ndarray:
    """Scene-linear ``(H, W, C)`` half or float planes -> ``(H, W, C_out)`` float32 scene-linear.

    What a tool calls with ``frame.stack(names)``: encodes every channel
    (:func:`plateforge_server.nets.unet.encode`), runs :func:`run_tiled` (same keywords), and
    decodes the result. Refuses NaN and Inf, which would bleed into neighbouring pixels.
    """
    if planes.ndim != 3 or planes.dtype not in (np.float16, np.float32):
        raise FrameError(
            f"expected (H, W, C) float16 or float32 planes; got shape {planes.shape}, dtype {planes.dtype}"
        )
    x = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)).permute(2, 0, 1)
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteError(f"planes hold {int((~torch.isfinite(x)).sum())} NaN or Inf samples; sanitise them first")
    y = run_tiled(
        net,
        encode(x),
        tile=tile,
        overlap=overlap,
        batch=batch,
        device=device,
        dtype=dtype,
        progress=progress,
        cancelled=cancelled,
    )
    result: np.ndarray = np.ascontiguousarray(decode(y).permute(1, 2, 0).cpu().numpy())
    return result


def _compute_device(net: TileableNet, requested: str | torch.device | None) -> torch.device:
    """Where the net's parameters are; ``requested`` must agree (the net is not moved)."""
    here = next(iter(net.parameters()), None)
    actual = here.device if here is not None else torch.device("cpu")
    if requested is None:
        return actual
    wanted = torch.device(requested)
    if wanted.type != actual.type or (wanted.index is not None and wanted.index != actual.index):
        raise UsageError(f"device {str(wanted)!r} asked for, but the net is on {str(actual)!r}; move it with net.to()")
    return actual


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """fp16 autocast for float16 on CUDA, nothing for float32; other combinations are refused."""
    if dtype is None or dtype == torch.float32:
        if device.type == "cuda":
            # float32 must mean float32: cuDNN convolutions default to TF32 (10-bit mantissa) on
            # Ampere and later, which would make a GPU worker's fp32 frames differ from a CPU
            # worker's. Set once and never restored, so concurrent calls cannot race on it; the
            # fp16 path does not use TF32 either way.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        return contextlib.nullcontext()
    if dtype == torch.float16:
        if device.type != "cuda":
            raise UsageError(f"float16 inference needs a CUDA device; on {device.type} use float32 (dtype=None)")
        return torch.autocast("cuda", dtype=torch.float16)
    raise UsageError(f"dtype {dtype} is not supported; use torch.float32 or (on CUDA) torch.float16")
