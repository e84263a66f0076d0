"""The U-Net: shapes at any size, presets, config round trips, residual identity, receptive field,
and the encode/decode value transform."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import torch

from plateforge.errors import FrameError, UsageError
from plateforge_server.nets.unet import (
    CONFIG_VERSION,
    SIZES,
    UNet,
    UNetConfig,
    decode,
    encode,
    pad_to_multiple,
)

#: A net small enough that every test here runs in well under a second.
TINY = UNetConfig(in_channels=3, out_channels=3, base_width=8, depth=2, blocks=1)


def param_count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def forward(net: UNet, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        y: torch.Tensor = net(x)
    return y


# -- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        pytest.param(TINY, (1, 3, 37, 53), id="odd-37x53"),
        pytest.param(UNetConfig(base_width=8, depth=4, blocks=1), (2, 3, 37, 53), id="odd-37x53-depth4-batch2"),
        pytest.param(TINY, (1, 3, 64, 64), id="already-aligned"),
        pytest.param(TINY, (1, 3, 1, 1), id="1x1-replicated"),
        pytest.param(TINY, (1, 3, 1, 53), id="one-row"),
        pytest.param(UNetConfig(base_width=8, depth=4, blocks=1), (1, 3, 5, 300), id="strip-shorter-than-padding"),
        pytest.param(UNetConfig(in_channels=4, out_channels=1, base_width=8, depth=3), (3, 4, 20, 9), id="4-in-1-out"),
        pytest.param(UNetConfig(base_width=3, depth=1, blocks=1, norm="none"), (1, 3, 7, 7), id="norm-none"),
    ],
)
def test_forward_keeps_the_size_at_any_shape(config: UNetConfig, shape: tuple[int, int, int, int]) -> None:
    y = forward(UNet(config), torch.randn(shape))
    assert y.shape == (shape[0], config.out_channels, shape[2], shape[3])
    assert y.dtype == torch.float32
    assert bool(torch.isfinite(y).all())


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((3, 16, 16), id="no-batch-dimension"),
        pytest.param((1, 4, 16, 16), id="wrong-channel-count"),
        pytest.param((1, 3, 0, 16), id="empty"),
    ],
)
def test_forward_refuses_bad_shapes_naming_them(shape: tuple[int, ...]) -> None:
    with pytest.raises(FrameError, match=r"UNet expects \(N, 3, H, W\)"):
        UNet(TINY)(torch.zeros(shape))


def test_padding_reflects_and_falls_back_to_replication_on_tiny_inputs() -> None:
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    assert pad_to_multiple(x, 1) is x
    reflected = pad_to_multiple(torch.arange(5.0).reshape(1, 1, 1, 5).expand(1, 1, 4, 5), 4)
    assert reflected[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    replicated = pad_to_multiple(x, 4)  # 2 rows cannot reflect 2 more: edge pixels repeat
    assert replicated.shape == (1, 1, 4, 4)
    assert replicated[0, 0, :, 3].tolist() == [2, 5, 5, 5]


# -- config and presets --------------------------------------------------------------------------

#: Receptive-field radius (pixels) and parameter count of each preset with 3 inputs and 3 outputs.
PRESET_FIGURES = {
    "small": (43, 486_387),
    "medium": (137, 7_052_835),
    "large": (137, 28_187_715),
}


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in SIZES])
def test_presets_build_with_the_figures_the_docs_quote(name: str) -> None:
    config = UNetConfig.preset(name, in_channels=3, out_channels=3)
    assert (config.base_width, config.depth, config.blocks) == (
        SIZES[name].base_width,
        SIZES[name].depth,
        SIZES[name].blocks,
    )
    net = UNet(config)
    assert (net.receptive_field, param_count(net)) == PRESET_FIGURES[name]
    assert net.size_multiple == 2**config.depth


def test_preset_passes_channels_and_residual_through() -> None:
    config = UNetConfig.preset("small", in_channels=4, out_channels=3, residual_from=(0, 1, 2), norm="none")
    assert (config.in_channels, config.out_channels, config.residual_from, config.norm) == (4, 3, (0, 1, 2), "none")


def test_unknown_preset_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown UNet size 'huge'; known sizes: \['large', 'medium', 'small'\]"):
        UNetConfig.preset("huge", in_channels=3, out_channels=3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"in_channels": 0}, "in_channels must be an integer >= 1", id="no-inputs"),
        pytest.param({"base_width": 2.5}, "base_width must be an integer", id="float-width"),
        pytest.param({"blocks": True}, "blocks must be an integer", id="bool-blocks"),
        pytest.param({"depth": 0}, "depth must be an integer from 1 to 7", id="depth-0"),
        pytest.param({"depth": 8}, "depth must be an integer from 1 to 7", id="depth-8"),
        pytest.param({"norm": "batch"}, r"norm must be one of \['group', 'none'\]", id="batch-norm"),
        pytest.param({"base_width": 64, "max_width": 32}, "max_width", id="max-below-base"),
        pytest.param({"base_width": 1}, "needs base_width >= 2", id="group-norm-of-one"),
        pytest.param({"residual_from": (0, 1)}, "one per output channel", id="residual-too-short"),
        pytest.param({"residual_from": (0, 1, 3)}, "outside 0..2", id="residual-out-of-range"),
        pytest.param({"residual_from": [0, 1, 2]}, "must be a tuple", id="residual-list"),
        pytest.param({"equivariant": 1}, "equivariant must be true or false", id="equivariant-int"),
        pytest.param({"residual_dead_zone": 0.1}, "residual_dead_zone needs residual_from", id="zone-no-residual"),
        pytest.param(
            {"residual_from": (0, 1, 2), "residual_dead_zone": -0.1}, "residual_dead_zone must be", id="zone-negative"
        ),
    ],
)
def test_invalid_configs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        UNetConfig(**changes)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(TINY, id="plain"),
        pytest.param(
            UNetConfig(in_channels=4, out_channels=3, base_width=6, depth=3, residual_from=(0, 1, 2)), id="residual"
        ),
        pytest.param(UNetConfig.preset("small", in_channels=5, out_channels=1, norm="none"), id="preset-no-norm"),
        pytest.param(
            UNetConfig.preset("small", in_channels=6, out_channels=3, residual_from=(0, 1, 2), equivariant=True),
            id="preset-equivariant",
        ),
    ],
)
def test_config_round_trips_through_json_and_rebuilds_the_same_net(config: UNetConfig) -> None:
    data = json.loads(json.dumps(config.to_dict()))
    assert data["version"] == CONFIG_VERSION == 3
    rebuilt = UNetConfig.from_dict(data)
    assert rebuilt == config
    trained = UNet(config, seed=3)
    with torch.no_grad():  # stand-in for training: weights no init would produce
        for p in trained.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    loaded = UNet(rebuilt, seed=99)
    loaded.load_state_dict(trained.state_dict())
    x = torch.randn(2, config.in_channels, 23, 41)
    assert torch.equal(forward(loaded, x), forward(trained, x))


@pytest.mark.parametrize(
    ("change", "drop", "message"),
    [
        pytest.param(
            {"version": 4}, (), r"version 4 is not one this code reads; known versions: \[1, 2, 3\]", id="future"
        ),
        pytest.param({}, ("version",), "version None", id="no-version"),
        pytest.param({"width": 8}, (), r"unknown fields \['width'\]", id="unknown-field"),
        pytest.param({}, ("depth",), r"missing fields \['depth'\]", id="missing-field"),
        pytest.param({"norm": "layer"}, (), "norm must be one of", id="bad-value"),
    ],
)
def test_from_dict_refuses_what_it_cannot_rebuild(change: dict[str, Any], drop: tuple[str, ...], message: str) -> None:
    data = {k: v for k, v in TINY.to_dict().items() if k not in drop}
    data.update(change)
    with pytest.raises(UsageError, match=message):
        UNetConfig.from_dict(data)


# -- init ----------------------------------------------------------------------------------------


def test_init_is_deterministic_given_the_seed() -> None:
    a, b, c = UNet(TINY, seed=7), UNet(TINY, seed=7), UNet(TINY, seed=8)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_init_does_not_depend_on_the_global_rng() -> None:
    torch.manual_seed(1)
    a = UNet(TINY)
    torch.manual_seed(2)
    b = UNet(TINY)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def test_residual_net_starts_as_the_identity_in_scene_linear() -> None:
    config = UNetConfig.preset("small", in_channels=4, out_channels=3, residual_from=(2, 1, 0))
    plate = torch.rand(1, 4, 29, 31) * 100 - 1  # scene-linear: slight negatives to bright highlights
    y = decode(forward(UNet(config), encode(plate)))
    torch.testing.assert_close(y, plate[:, [2, 1, 0]], rtol=1e-6, atol=1e-6)


# -- receptive field -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(UNetConfig(base_width=4, depth=1, blocks=1), id="depth1"),
        pytest.param(UNetConfig(base_width=4, depth=2, blocks=2), id="depth2-blocks2"),
        pytest.param(UNetConfig(base_width=4, depth=3, blocks=1, norm="none"), id="depth3-no-norm"),
        pytest.param(UNetConfig(base_width=4, depth=2, blocks=2, equivariant=True), id="depth2-blocks2-equivariant"),
        pytest.param(UNetConfig(base_width=4, depth=3, blocks=1, equivariant=True), id="depth3-equivariant"),
    ],
)
def test_receptive_field_is_exactly_how_far_a_pixel_reaches(config: UNetConfig) -> None:
    """Change one input pixel (at every phase of the downsampling grid): outputs farther away
    than the radius stay bit for bit the same, and at the worst phase some output at exactly the
    radius changes, so the figure tiling relies on is neither too small nor needlessly large."""
    net = UNet(config, seed=1)
    radius = net.receptive_field
    size = 2 * radius + 3 * net.size_multiple + 1
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    base = forward(net, x)
    reach = 0
    centre = radius + net.size_multiple
    for phase in range(net.size_multiple):
        poked = x.clone()
        poked[0, :, centre + phase, centre + phase] += 10.0
        changed = (forward(net, poked) != base).any(dim=1)[0].nonzero()
        distance = (changed - (centre + phase)).abs().max(dim=1).values
        reach = max(reach, int(distance.max()))
    assert reach == radius


# -- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([0.0, -0.0, 1e-8, -1e-8, 1e-3], id="near-zero"),
        pytest.param([0.18, 0.5, 1.0, 2.0, -0.05], id="mid-grey-to-white"),
        pytest.param([100.0, 1e3, 6.5e4, -100.0, 1e6], id="highlights"),
    ],
)
def test_decode_inverts_encode(values: list[float]) -> None:
    x = torch.tensor(values)
    torch.testing.assert_close(decode(encode(x)), x, rtol=1e-6, atol=1e-12)
    y = encode(x) * 0.7  # any encoded value in range decodes and re-encodes to itself
    torch.testing.assert_close(encode(decode(y)), y, rtol=1e-6, atol=1e-12)


def test_encode_compresses_highlights_and_keeps_order_and_sign() -> None:
    x = torch.linspace(-100, 100, 20001)
    y = encode(x)
    assert bool((y[1:] > y[:-1]).all())
    assert torch.equal(encode(-x), -y)
    assert float(encode(torch.tensor(100.0))) == pytest.approx(4.615, abs=1e-3)
    assert float(encode(torch.tensor(1e-4))) == pytest.approx(1e-4, rel=1e-3)


def test_a_residual_gate_keeps_the_residual_input_exactly_where_it_is_set() -> None:
    """The learned cleanup's gate: where the gate channel is set the output is the residual input
    bit for bit, whatever the weights (a trained, even a diverged, net cannot touch it), and the
    prediction counts everywhere else."""
    config = UNetConfig(
        in_channels=4, out_channels=2, base_width=4, max_width=8, depth=2, residual_from=(0, 1), residual_gate=3
    )
    net = UNet(config, seed=3)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter))  # far from the zero-initialised head
    x = torch.randn(2, 4, 9, 13)
    x[:, 3] = (torch.rand(2, 9, 13) > 0.5).float()
    y = net(x)
    gated = x[:, 3:4].expand(-1, 2, -1, -1) > 0
    assert torch.equal(y[gated], x[:, [0, 1]][gated])
    assert (y[~gated] != x[:, [0, 1]][~gated]).float().mean() > 0.9
    y.sum().backward()  # the gate passes no gradient through the kept pixels, and training still runs


def test_a_version_1_config_reads_as_ungated_and_a_gate_needs_a_residual() -> None:
    config = UNetConfig(in_channels=8, out_channels=3, residual_from=(3, 4, 5), residual_gate=7)
    assert UNetConfig.from_dict(config.to_dict()) == config
    old = {k: v for k, v in config.to_dict().items() if k != "residual_gate"} | {"version": 1}
    assert UNetConfig.from_dict(old).residual_gate is None
    with pytest.raises(UsageError, match="residual_gate needs residual_from"):
        UNetConfig(in_channels=8, out_channels=3, residual_gate=7)
    with pytest.raises(UsageError, match="residual_gate must be an input channel index"):
        UNetConfig(in_channels=8, out_channels=3, residual_from=(3, 4, 5), residual_gate=8)


def test_version_1_and_2_configs_read_as_without_equivariance_or_dead_zone() -> None:
    """Nets saved before these fields existed were built with stride-2 convs, nearest upsampling and no dead zone."""
    config = UNetConfig(
        in_channels=6, out_channels=3, residual_from=(0, 1, 2), equivariant=True, residual_dead_zone=0.06
    )
    assert UNetConfig.from_dict(config.to_dict()) == config
    for version in (1, 2):
        newer = ("equivariant", "residual_dead_zone")
        old = {k: v for k, v in config.to_dict().items() if k not in newer} | {"version": version}
        assert UNetConfig.from_dict(old).equivariant is False
        assert UNetConfig.from_dict(old).residual_dead_zone == 0.0


def _moved(x: torch.Tensor, dx: int) -> torch.Tensor:
    return torch.roll(x, shifts=dx, dims=3)


def test_equivariant_makes_the_answer_move_with_the_picture() -> None:
    """A whole-pixel move that is not a multiple of the 8-pixel grid: the classic layout's output
    changes by far more than the move (aliasing); the equivarianted one nearly moves with it. The
    same seed and widths, trained by nothing: the layout alone decides. Measured on the central
    part (the roll wraps the edges)."""
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    errors = {}
    for equivariant in (False, True):
        net = UNet(UNetConfig(base_width=8, depth=3, blocks=1, equivariant=equivariant), seed=2).eval()
        with torch.no_grad():
            y, moved = net(x), net(_moved(x, 3))
        inner = (slice(None), slice(None), slice(24, 72), slice(24, 72))
        errors[equivariant] = float(((moved - _moved(y, 3))[inner]).abs().mean() / y[inner].abs().mean())
    assert errors[True] < 0.5 * errors[False], errors


def test_a_dead_zone_drops_small_corrections_at_inference_only() -> None:
    """In eval mode, predictions inside the zone leave the residual input exactly and those
    outside it are shrunk by the zone; in train mode the prediction is whole, so a fresh net (head
    at zero: every prediction inside the zone) still gets a gradient."""
    zone = 0.05
    config = UNetConfig(in_channels=3, out_channels=3, base_width=8, depth=2, residual_from=(0, 1, 2))
    plain = UNet(config, seed=4).eval()
    zoned = UNet(dataclasses.replace(config, residual_dead_zone=zone), seed=4).eval()
    with torch.no_grad():
        for net in (plain, zoned):
            torch.nn.init.normal_(net.head.weight, std=0.02, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        correction = plain(x) - x
        out = zoned(x)
        assert torch.equal(zoned.train()(x), plain(x))  # training sees the whole prediction
    small = correction.abs() < zone
    assert 0.05 < float(small.float().mean()) < 0.95  # both cases are tested
    assert torch.equal(out[small], x[small])
    expected = x + torch.sign(correction) * (correction.abs() - zone)
    torch.testing.assert_close(out[~small], expected[~small], rtol=0, atol=1e-5)
    fresh = UNet(dataclasses.replace(config, residual_dead_zone=zone), seed=4).train()
    (fresh(x) - 2 * x).abs().mean().backward()  # type: ignore[no-untyped-call]
    assert fresh.head.weight.grad is not None and float(fresh.head.weight.grad.abs().sum()) > 0
