"""The Flame sidecar and the Nuke CatFileCreator settings of an export, checked against what the
hosts document, on a net built in the test (no training: these are about layout, not numbers).

Flame's fields come from Autodesk's Flame 2025 documentation:
  https://help.autodesk.com/view/FLAME/2025/ENU/?guid=inference_builder  (the sidecar's tokens:
    ModelDescription with MinimumVersion, Name, Description, SupportsSceneLinear, KeepAspectRatio,
    Padding, Inputs [Name, Description, Type, Gain], Outputs)
  https://help.autodesk.com/cloudhelp/2025/ENU/Flame-WhatsNew/files/What-s-New-in-Flame-Family-2025/What-s-New-in-2025-2/wn-2025-2-inference.html
    (Channels on inputs: any combination of R, G, B, or A alone; on outputs: "A", 2 or 3 of R, G, B)
  https://help.autodesk.com/view/FLAME/2025/ENU/?guid=inference_node  (input types Front, Back,
    Matte, Aux; output types Result, OutMatte)
Nuke's 19 channel names: https://learn.foundry.com/nuke/developers/14.0/catfilecreationreferenceguide/appendix.html
"""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

from plateforge.models import InputSpec, OutputSpec
from plateforge_server.export.flame import FlameModule, flame_inputs, flame_sidecar
from plateforge_server.export.functions import FrameFunction, frame_function
from plateforge_server.export.nuke import NUKE_CHANNELS, nuke_channels
from plateforge_server.export.onnx_writer import onnx_bytes
from plateforge_server.modelcard import ModelCard, NetSpec
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.relight.affine_start import AffineUNet

DESCRIPTION_KEYS = {"MinimumVersion", "Name", "Description", "SupportsSceneLinear", "KeepAspectRatio", "Padding"}
INPUT_KEYS = {"Name", "Description", "Type", "Gain", "Channels"}
INPUT_TYPES = {"Front", "Back", "Matte", "Aux"}
OUTPUT_TYPES = {"Result", "OutMatte"}
COLOUR = re.compile(r"^(?!.*(.).*\1)[RGB]{1,3}$")  # R, G, B in any order, each at most once


def _card(arch: str, inputs: tuple[InputSpec, ...], outputs: tuple[str, ...], config: UNetConfig) -> ModelCard:
    return ModelCard(
        name="t",
        version="1",
        tool="test",
        net=NetSpec(arch, config.to_dict()),
        inputs=inputs,
        outputs=tuple(OutputSpec(name=o) for o in outputs),
    )


CASES = [
    pytest.param("pairs-aovs", id="pairs-with-5-aovs"),
    pytest.param("cleanup", id="cleanup"),
    pytest.param("matte", id="matte"),
]


def _function(case: str) -> FrameFunction:
    if case == "pairs-aovs":
        channels = ("R", "G", "B", "N.x", "N.y", "N.z", "P.x", "depth")
        config = UNetConfig(
            in_channels=11, out_channels=3, base_width=8, max_width=16, depth=2, blocks=1, residual_from=(0, 1, 2)
        )
        card = _card("affine-unet", (InputSpec(name="plate", channels=channels),), ("image",), config)
        return frame_function(card, AffineUNet(config, seed=3).eval())
    if case == "cleanup":
        config = UNetConfig(
            in_channels=8,
            out_channels=3,
            base_width=8,
            max_width=16,
            depth=2,
            blocks=1,
            residual_from=(3, 4, 5),
            residual_gate=7,
        )
        card = _card("guided-unet", (InputSpec(name="plate"), InputSpec(name="mask")), ("image",), config)
        return frame_function(card, UNet(config, seed=3).eval())
    config = UNetConfig(
        in_channels=7, out_channels=1, base_width=8, max_width=16, depth=2, blocks=1, residual_from=(6,)
    )
    card = _card(
        "matte-unet", (InputSpec(name="plate"), InputSpec(name="clean_plate")), ("alpha", "foreground"), config
    )
    return frame_function(card, UNet(config, seed=3).eval())


@pytest.mark.parametrize("case", CASES)
def test_the_sidecar_has_the_fields_flame_documents(case: str) -> None:
    function = _function(case)
    sidecar = flame_sidecar(_card("unet", (), (), UNetConfig()), function)
    assert set(sidecar) == {"ModelDescription"}
    description = sidecar["ModelDescription"]
    assert set(description) >= DESCRIPTION_KEYS and set(description) - DESCRIPTION_KEYS == {"Inputs", "Outputs"}
    assert description["SupportsSceneLinear"] is True and description["Padding"] == 1
    assert re.fullmatch(r"20\d\d\.\d+", description["MinimumVersion"])
    total = 0
    for item in description["Inputs"]:
        assert set(item) == INPUT_KEYS and item["Type"] in INPUT_TYPES and item["Gain"] == 1.0
        assert item["Channels"] == "A" or COLOUR.match(item["Channels"]), item  # Flame's input limit
        total += len(item["Channels"])
    assert total == len(function.input_channels)  # every channel reaches the graph, none twice
    assert description["Inputs"][0]["Type"] == "Front" and description["Inputs"][0]["Channels"] == "RGB"
    for item in description["Outputs"]:
        assert item["Type"] in OUTPUT_TYPES
        assert item["Channels"] == "A" or COLOUR.match(item["Channels"])
    if case == "matte":
        assert [i["Type"] for i in description["Inputs"]] == ["Front", "Back", "Matte", "Matte"]
        assert description["Outputs"][0]["Type"] == "OutMatte"


@pytest.mark.parametrize("case", CASES)
def test_the_split_flame_graph_is_the_single_tensor_function(case: str) -> None:
    function = _function(case)
    inputs = flame_inputs(function)
    rng = np.random.default_rng(0)
    whole = rng.uniform(0.0, 1.5, size=(1, len(function.input_channels), 29, 35)).astype(np.float32)
    if case == "matte":
        whole[:, 7] = (whole[:, 7] > 0.7).astype(np.float32)
    parts, at = [], 0
    for item in inputs:
        parts.append(whole[:, at : at + len(item.channels)])
        at += len(item.channels)
    examples = [torch.from_numpy(p[:, :, :20, :21].copy()) for p in parts]
    data = onnx_bytes(
        FlameModule(function), examples, input_names=[i.name for i in inputs], output_names=["out"], metadata={}, doc=""
    )
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: p for i, p in zip(inputs, parts, strict=True)})[0]
    with torch.no_grad():
        expected = function(torch.from_numpy(whole)).numpy()
    assert float(np.abs(got - expected).max()) <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_nuke_channels_are_catfilecreators_and_distinct(case: str) -> None:
    function = _function(case)
    channels_in, channels_out = nuke_channels(function)
    assert len(channels_in) == len(function.input_channels) and len(set(channels_in)) == len(channels_in)
    assert set(channels_in) <= set(NUKE_CHANNELS) and set(channels_out) <= set(NUKE_CHANNELS)
    assert channels_in[:3] == ["rgba.red", "rgba.green", "rgba.blue"]
    assert channels_out == (["rgba.alpha"] if case == "matte" else ["rgba.red", "rgba.green", "rgba.blue"])
