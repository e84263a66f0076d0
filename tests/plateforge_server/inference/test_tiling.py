"""Tiled inference: the tile plan and its blend weights, tiled == untiled, batching, progress and
cancellation, argument checks, and the numpy-facing helper.

"Exact" overlap here means ``overlap >= 2 * receptive_field``: a tile's output is wrong within
``receptive_field`` pixels of an edge it shares with a neighbour, and both neighbours need that
much, so the comparison with the untiled run is made at the default overlap, which is exactly that.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plateforge.errors import CancelledError, FrameError, NonFiniteError, UsageError
from plateforge_server.inference.tiling import TilePlan, plan_tiles, run_on_frame_arrays, run_tiled
from plateforge_server.nets.unet import UNet, UNetConfig

#: Tiny nets, so the 4K comparison (untiled and tiled) stays near 10 s on two cores.
DEPTH2 = UNetConfig(base_width=8, depth=2, blocks=1)  # receptive field 19
DEPTH3 = UNetConfig(base_width=6, depth=3, blocks=1, residual_from=(0, 1, 2))  # receptive field 43
TINY_4K = UNetConfig(base_width=4, depth=2, blocks=1)  # receptive field 19
#: Blur-pool down, bilinear up (the relight's): each widens the field, so tiling must know it (57).
EQUIVARIANT = UNetConfig(base_width=6, depth=3, blocks=1, residual_from=(0, 1, 2), equivariant=True)


def untiled(net: UNet, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        y: torch.Tensor = net(x)
    return y


def image(*shape: int, seed: int = 0) -> torch.Tensor:
    """Scene-linear-looking values, already encoded (the nets' input range)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 3 - 0.5


# -- the plan ------------------------------------------------------------------------------------

PLANS = [
    pytest.param(dict(height=301, width=517, tile=128, overlap=None, receptive_field=19, size_multiple=4), id="exact"),
    pytest.param(
        dict(height=301, width=517, tile=128, overlap=60, receptive_field=19, size_multiple=4), id="exact+fth"
    ),
    pytest.param(dict(height=300, width=200, tile=100, overlap=16, receptive_field=43, size_multiple=8), id="approx"),
    pytest.param(dict(height=2160, width=4096, tile=512, overlap=None, receptive_field=137, size_multiple=16), id="4k"),
    pytest.param(dict(height=37, width=1000, tile=64, overlap=20, receptive_field=5, size_multiple=4), id="one-row"),
    pytest.param(dict(height=50, width=60, tile=512, overlap=None, receptive_field=43, size_multiple=8), id="whole"),
    pytest.param(dict(height=130, width=130, tile=64, overlap=56, receptive_field=9, size_multiple=8), id="deep-ovl"),
]


def coverage(plan: TilePlan) -> torch.Tensor:
    count = torch.zeros(plan.height, plan.width)
    for top, left in plan.origins:
        count[top : top + plan.tile_height, left : left + plan.tile_width] += 1
    return count


@pytest.mark.parametrize("args", PLANS)
def test_tiles_are_aligned_inside_the_frame_and_cover_it(args: dict[str, int]) -> None:
    plan = plan_tiles(**args)  # type: ignore[arg-type]
    multiple = args["size_multiple"]
    assert plan.height % multiple == 0 and plan.height - multiple < args["height"] <= plan.height
    assert plan.width % multiple == 0 and plan.width - multiple < args["width"] <= plan.width
    assert plan.tile_height % multiple == 0 and plan.tile_width % multiple == 0
    for starts, size, length in ((plan.rows, plan.tile_height, plan.height), (plan.cols, plan.tile_width, plan.width)):
        assert starts[0] == 0 and starts[-1] + size == length  # edge tiles shifted inward, never past the edge
        assert all(s % multiple == 0 for s in starts) and list(starts) == sorted(set(starts))
    assert bool((coverage(plan) >= 1).all())


@pytest.mark.parametrize("args", PLANS)
def test_blend_weights_are_one_where_one_tile_covers_and_normalise_to_one(args: dict[str, int]) -> None:
    plan = plan_tiles(**args)  # type: ignore[arg-type]
    total = plan.weight_sum()
    alone = coverage(plan) == 1
    assert bool((total > 0.25).all()), "some pixel has (almost) no tile weight"
    assert torch.equal(total[alone], torch.ones_like(total[alone]))
    normalised = torch.zeros_like(total)
    for top, left in plan.origins:
        weight = plan.weight(top, left)
        assert bool(((weight >= 0) & (weight <= 1)).all())
        normalised[top : top + plan.tile_height, left : left + plan.tile_width] += weight
    torch.testing.assert_close(normalised / total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_regular_overlaps_cross_fade_to_exactly_one() -> None:
    """Away from the shifted last tiles, a neighbour's rising ramp is the other's falling one."""
    plan = plan_tiles(1000, 40, tile=200, overlap=80, receptive_field=10, size_multiple=4)
    assert (plan.margin, plan.feather) == (10, 60)
    total = plan.weight_sum()[: plan.rows[-1]]  # above the shifted last row of tiles
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_exact_plans_give_no_weight_where_a_tile_lacks_context() -> None:
    plan = plan_tiles(301, 517, tile=128, overlap=None, receptive_field=19, size_multiple=4)
    assert (plan.margin, plan.feather) == (19, 40 - 38)
    for top, left in plan.origins:
        weight = plan.weight(top, left)
        if top > 0:
            assert float(weight[:19].abs().max()) == 0
        if left + plan.tile_width < plan.width:
            assert float(weight[:, -19:].abs().max()) == 0


def test_overlap_below_twice_the_receptive_field_cross_fades_over_all_of_it() -> None:
    plan = plan_tiles(301, 517, tile=128, overlap=30, receptive_field=19, size_multiple=4)
    assert (plan.margin, plan.feather) == (0, 32)


# -- tiled equals untiled ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "shape", "tile"),
    [
        pytest.param(DEPTH2, (1, 3, 301, 517), 128, id="301x517-depth2-tile128"),
        pytest.param(DEPTH3, (1, 3, 301, 517), 128, id="301x517-depth3-residual-tile128"),
        pytest.param(DEPTH2, (2, 3, 150, 97), 64, id="two-images-tile64"),
        pytest.param(EQUIVARIANT, (1, 3, 301, 517), 128, id="301x517-equivariant-tile128"),
    ],
)
def test_tiled_equals_untiled_at_the_default_overlap(
    config: UNetConfig, shape: tuple[int, int, int, int], tile: int
) -> None:
    net = UNet(config, seed=5).eval()
    x = image(*shape)
    tiled = run_tiled(net, x, tile=tile, batch=4)
    assert tiled.shape == (shape[0], config.out_channels, shape[2], shape[3])
    error = float((tiled - untiled(net, x)).abs().max())
    assert error < 1e-3, f"tiled differs from untiled by {error}"


@pytest.mark.slow
def test_tiled_equals_untiled_at_4k() -> None:
    """A 2160x4096 frame in 512 tiles against one untiled pass over the whole frame (a tiny net
    keeps the untiled pass at about 5 s and 2 GB on CPU, so no crop is needed)."""
    net = UNet(TINY_4K, seed=2).eval()
    x = image(1, 3, 2160, 4096)
    tiled = run_tiled(net, x, tile=512, batch=4)
    error = float((tiled - untiled(net, x)).abs().max())
    assert error < 1e-3, f"tiled differs from untiled by {error}"


def test_a_frame_smaller_than_a_tile_runs_whole() -> None:
    net = UNet(DEPTH3, seed=1).eval()
    x = image(3, 45, 61)
    calls: list[tuple[int, ...]] = []
    net.register_forward_hook(lambda _m, args, _out: calls.append(tuple(args[0].shape)))
    y = run_tiled(net, x, tile=512)  # (C, H, W) in, (C_out, H, W) out
    assert calls == [(1, 3, 48, 64)]
    assert y.shape == (3, 45, 61)
    assert torch.equal(y, untiled(net, x[None])[0])


def test_batching_gives_the_same_result_as_one_tile_at_a_time() -> None:
    """Equal to float rounding, not bit for bit: oneDNN's CPU convolutions split the work
    differently for different batch sizes (measured: up to 2e-6 after the first conv, about 1e-5
    at the output of this random-init net, whose per-pixel norms magnify rounding)."""
    net = UNet(DEPTH2, seed=3).eval()
    x = image(2, 3, 200, 170)
    one = run_tiled(net, x, tile=96, batch=1)
    for batch in (3, 8, 1000):
        torch.testing.assert_close(run_tiled(net, x, tile=96, batch=batch), one, rtol=0, atol=1e-4)


# -- progress and cancellation -------------------------------------------------------------------


def test_progress_counts_tiles_and_cancel_stops_early() -> None:
    net = UNet(DEPTH2).eval()
    x = image(1, 3, 300, 300)
    total = len(plan_tiles(300, 300, tile=64, overlap=8, receptive_field=19, size_multiple=4).origins)
    assert total == 36
    seen: list[tuple[int, int]] = []
    run_tiled(net, x, tile=64, overlap=8, batch=4, progress=lambda done, of: seen.append((done, of)))
    assert seen == [(done, total) for done in range(4, total + 1, 4)]

    seen.clear()
    with pytest.raises(CancelledError, match=f"cancelled after 8 of {total} tiles"):
        run_tiled(
            net,
            x,
            tile=64,
            overlap=8,
            batch=4,
            progress=lambda done, of: seen.append((done, of)),
            cancelled=lambda: len(seen) >= 2,
        )
    assert seen == [(4, total), (8, total)]


# -- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"tile": 2}, UsageError, "tile 2 is smaller than the net's size multiple 4", id="tile-too-small"),
        pytest.param(
            {"tile": 64, "overlap": 62}, UsageError, "overlap 64 leaves tile 64 no new pixels", id="no-stride"
        ),
        pytest.param({"overlap": -1}, UsageError, "overlap must be >= 0", id="negative-overlap"),
        pytest.param({"batch": 0}, UsageError, "batch must be >= 1", id="batch-0"),
        pytest.param({"dtype": torch.float16}, UsageError, "float16 inference needs a CUDA device", id="fp16-on-cpu"),
        pytest.param({"dtype": torch.float64}, UsageError, "dtype torch.float64 is not supported", id="fp64"),
        pytest.param({"device": "cuda:1"}, UsageError, "but the net is on 'cpu'", id="other-device"),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        run_tiled(UNet(DEPTH2), image(1, 3, 100, 100), **kwargs)  # type: ignore[arg-type]


def test_explicit_cpu_device_and_float32_are_accepted() -> None:
    net = UNet(DEPTH2).eval()
    x = image(1, 3, 40, 40)
    assert torch.equal(run_tiled(net, x, device="cpu", dtype=torch.float32), run_tiled(net, x))


@pytest.mark.parametrize("shape", [pytest.param((100,), id="1d"), pytest.param((1, 1, 3, 10, 10), id="5d")])
def test_images_must_be_3d_or_4d(shape: tuple[int, ...]) -> None:
    with pytest.raises(FrameError, match=r"expects \(C, H, W\) or \(N, C, H, W\)"):
        run_tiled(UNet(DEPTH2), torch.zeros(shape))


# -- numpy planes --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [pytest.param(np.float32, id="float"), pytest.param(np.float16, id="half")])
def test_frame_arrays_through_a_fresh_residual_net_come_back_unchanged(dtype: type) -> None:
    config = UNetConfig(in_channels=4, out_channels=3, base_width=6, depth=2, blocks=1, residual_from=(0, 1, 2))
    rng = np.random.default_rng(0)
    planes: np.ndarray = (rng.random((70, 90, 4)) * 120 - 1).astype(dtype)  # highlights to 119, small negatives
    out = run_on_frame_arrays(UNet(config).eval(), planes, tile=64)
    assert out.shape == (70, 90, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, planes[:, :, :3].astype(np.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("planes", "error", "message"),
    [
        pytest.param(np.zeros((8, 8), np.float32), FrameError, r"expected \(H, W, C\)", id="2d"),
        pytest.param(np.zeros((8, 8, 3), np.float64), FrameError, "dtype float64", id="float64"),
        pytest.param(np.full((8, 8, 3), np.nan, np.float32), NonFiniteError, "192 NaN or Inf", id="nan"),
    ],
)
def test_frame_arrays_are_checked(planes: np.ndarray, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        run_on_frame_arrays(UNet(DEPTH2), planes)
