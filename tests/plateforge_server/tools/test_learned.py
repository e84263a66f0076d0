"""The learned-model runtime: a model folder as a tool, run in process (no server).

The models are tiny UNets saved with ``save_model``. A residual net starts as the identity (its
last conv is zero), so its output must equal the plate within float rounding: that proves the
plumbing (encode, tiles, decode, channel order, pixel types, pass-through) without training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge.errors import CancelledError, ModelIntegrityError
from plateforge.frames import Box, Frame
from plateforge.models import InputSpec, OutputSpec, ParamSpec, resolve_params
from plateforge_server.modelcard import CodeVersion, ModelCard, NetSpec, save_model
from plateforge_server.nets.unet import UNet, UNetConfig, decode, encode
from plateforge_server.tools.base import ToolCall, ToolModule
from plateforge_server.tools.learned import LearnedState, tool_module_for
from tests.frames_for_tests import bits

RGB = ("R", "G", "B")


def net_config(*, mask: bool = False) -> UNetConfig:
    return UNetConfig(
        in_channels=4 if mask else 3,
        out_channels=3,
        base_width=8,
        max_width=16,
        depth=2,
        blocks=1,
        residual_from=(0, 1, 2),
    )


def make_model(
    folder: Path,
    *,
    name: str = "look-test",
    version: str = "1",
    mask: bool = False,
    net: UNet | None = None,
) -> Path:
    """A model folder at ``folder``: a tiny residual UNet (the identity unless ``net`` is given)."""
    config = net_config(mask=mask)
    net = net if net is not None else UNet(config)
    inputs = (InputSpec("plate", "The plate.", channels=RGB),)
    if mask:
        inputs += (InputSpec("mask", "What to fill.", channels=()),)
    card = ModelCard(
        name=name,
        version=version,
        tool="cleanup" if mask else "look",
        net=NetSpec("unet", config.to_dict()),
        description="a test model",
        inputs=inputs,
        outputs=(OutputSpec("image", "The result.", RGB),),
        parameters=(ParamSpec("strength", "float", 1.0, label="Strength", minimum=0.0, maximum=1.0),),
        padding=config.receptive_field,
        code_version=CodeVersion(plateforge="test"),
    )
    save_model(folder, tensors=net.state_dict(), card=card)
    return folder


def plate(width: int = 37, height: int = 29, *, origin: tuple[int, int] = (-5, 12)) -> Frame:
    rng = np.random.default_rng(7)
    shape = (height, width)
    return Frame(
        channels={
            "A": np.ones(shape, np.float16),
            "B": (rng.random(shape, dtype=np.float32) * 4).astype(np.float16),
            "G": rng.random(shape, dtype=np.float32).astype(np.float16),
            "R": (rng.standard_normal(shape).astype(np.float32) * 20).astype(np.float16),
            "Z": rng.random(shape, dtype=np.float32) * 100,
            "id": rng.integers(0, 2**32 - 1, shape, dtype=np.uint32),
        },
        data_window=Box.from_size(width, height, x=origin[0], y=origin[1]),
        display_window=Box(0, 0, 63, 47),
        frame_number=1001,
    )


def float_plate() -> Frame:
    frame = plate()
    return frame.replace(channels={**frame.channels, "G": frame.channels["G"].astype(np.float32)})


def call_for(tool: ToolModule, inputs: dict[str, Frame]) -> ToolCall:
    return ToolCall(
        info=tool.info,
        inputs={k: [v] for k, v in inputs.items()},
        params=resolve_params(tool.info, {}),
        target_frame=inputs["plate"].frame_number,
    )


def run(tool: ToolModule, inputs: dict[str, Frame]) -> Frame:
    state = tool.load(device="cpu")
    outputs = tool.run(state, call_for(tool, inputs))
    assert list(outputs) == ["image"]
    return outputs["image"]


def test_info_comes_from_the_card(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m"))
    assert (tool.info.name, tool.info.version, tool.info.tool) == ("look-test", "1", "look")
    assert [i.name for i in tool.info.inputs] == ["plate"]
    assert [p.name for p in tool.info.parameters] == ["strength"]
    assert tool.info.padding == net_config().receptive_field
    assert len(tool.info.attributes["weights_sha256"]) == 64


def test_identity_net_returns_the_plate(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m"))
    source = float_plate()
    out = run(tool, {"plate": source})
    assert list(out.channels) == list(source.channels)
    assert (out.data_window, out.display_window) == (source.data_window, source.display_window)
    for name in ("A", "Z", "id", "R", "B"):  # untouched, and half R, B come back bit for bit
        assert out.channels[name].dtype == source.channels[name].dtype
        assert np.array_equal(bits(out.channels[name]), bits(source.channels[name])), name
    assert out.channels["G"].dtype == np.float32
    np.testing.assert_allclose(out.channels["G"], source.channels["G"], rtol=1e-5, atol=1e-6)


def test_a_trained_looking_net_gives_what_the_net_gives(tmp_path: Path) -> None:
    """With non-zero weights the result is decode(net(encode(plate))), in the plate's types."""
    config = net_config()
    net = UNet(config, seed=3)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    tool = tool_module_for(make_model(tmp_path / "m", net=net))
    source = float_plate()
    out = run(tool, {"plate": source})
    net.eval()
    with torch.no_grad():
        x = torch.from_numpy(source.stack(RGB)).permute(2, 0, 1)[None]
        want = decode(net(encode(x)))[0].permute(1, 2, 0).numpy()
    assert not np.allclose(want, source.stack(RGB), atol=1e-3)  # the net does change the plate
    np.testing.assert_allclose(out.channels["G"], want[:, :, 1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.channels["R"].astype(np.float32), want[:, :, 0], rtol=2e-3, atol=1e-3)
    assert np.array_equal(bits(out.channels["Z"]), bits(source.channels["Z"]))


def test_load_builds_the_net_and_counts_its_bytes(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m"))
    state = tool.load(device="cpu")
    assert isinstance(state, LearnedState)
    expected = sum(p.numel() * 4 for p in UNet(net_config()).parameters())
    assert state.parameter_bytes >= expected > 0
    assert not state.net.training


def test_changed_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m")
    tool = tool_module_for(folder)  # the card is fine: the server offers the model
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors") as caught:
        tool.load(device="cpu")
    assert str(weights) in str(caught.value)


def test_a_broken_card_is_refused_naming_it(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m")
    (folder / "card.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match=r"card\.json"):
        tool_module_for(folder)


def test_a_net_the_card_cannot_feed_is_refused(tmp_path: Path) -> None:
    """A mask model's card with a 3-channel net: refused when read, not when a frame arrives."""
    config = net_config()
    card = ModelCard(
        name="bad",
        version="1",
        tool="cleanup",
        net=NetSpec("unet", config.to_dict()),
        inputs=(InputSpec("plate", channels=RGB), InputSpec("mask")),
        outputs=(OutputSpec("image", channels=RGB),),
        code_version=CodeVersion(plateforge="test"),
    )
    save_model(tmp_path / "m", tensors=UNet(config).state_dict(), card=card)
    with pytest.raises(ModelIntegrityError, match="must read 4"):
        tool_module_for(tmp_path / "m")


def mask_frame(source: Frame) -> tuple[Frame, np.ndarray]:
    height, width = source.height, source.width
    mask = np.zeros((height, width), np.float32)
    mask[8:20, 10:25] = 1.0
    mask[8:20, 25:28] = 0.5  # a soft edge
    frame = Frame(
        channels={"A": mask.astype(np.float16)},
        data_window=source.data_window,
        display_window=source.display_window,
        frame_number=source.frame_number,
    )
    return frame, mask


def test_mask_model_zeroes_under_the_mask_and_composites(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m", mask=True))
    source = float_plate()
    mask_input, mask = mask_frame(source)
    out = run(tool, {"plate": source, "mask": mask_input})
    outside = mask == 0
    for name in source.channels:
        got, want = out.channels[name], source.channels[name]
        assert got.dtype == want.dtype
        if name in RGB:  # outside the mask: bit for bit
            assert np.array_equal(bits(got[outside]), bits(want[outside])), name
        else:
            assert np.array_equal(bits(got), bits(want)), name
    # The identity net returns what it was fed: the plate zeroed under the mask. Fully inside,
    # the result is 0, so the net saw the zeroed plate; on the soft edge the composite blends.
    full = mask == 1
    for name in RGB:
        assert np.all(out.channels[name][full] == 0), name
    soft = mask == 0.5
    g = source.channels["G"][soft].astype(np.float64)
    fed = np.sign(g) * np.expm1(np.log1p(np.abs(g)) * 0.5)  # zeroed as training did: encoded * (1 - m)
    np.testing.assert_allclose(out.channels["G"][soft], g * 0.5 + fed * 0.5, rtol=1e-5, atol=1e-6)


def test_an_empty_mask_passes_the_plate_through(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m", mask=True))
    source = plate()
    mask_input, _ = mask_frame(source)
    empty = mask_input.replace(channels={"A": np.zeros_like(mask_input.channels["A"])})
    out = run(tool, {"plate": source, "mask": empty})
    for name in source.channels:
        assert np.array_equal(bits(out.channels[name]), bits(source.channels[name])), name


def test_a_cancelled_call_stops(tmp_path: Path) -> None:
    tool = tool_module_for(make_model(tmp_path / "m"))
    state = tool.load(device="cpu")
    call = call_for(tool, {"plate": plate()})
    call.cancelled.set()
    with pytest.raises(CancelledError):
        tool.run(state, call)
