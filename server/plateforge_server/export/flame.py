"""Autodesk Flame's Inference node: the ONNX graph with its inputs split as the node takes them,
and the JSON sidecar it reads (and ``inference_builder`` packs into an ``.inf``).

What the node takes (Flame 2025 documentation, Inference node and Inference Builder pages):

* inputs of four types, Front, Back, Matte and Aux, as many as the model's ONNX inputs; each reads
  at most three colour channels (any order of R, G, B) or one matte channel (A), named by its
  ``Channels`` token (2025.2 and later; RGBA needs two inputs);
* outputs of two types, Result and OutMatte, with ``Channels`` ("A" for one channel);
* ``ModelDescription`` keys: MinimumVersion, Name, Description, SupportsSceneLinear,
  KeepAspectRatio, Padding, Inputs (Name, Description, Type, Gain, Channels), Outputs.

So each :class:`~plateforge_server.export.functions.ChannelGroup` of the per-frame function
becomes an ONNX input of its own, split in threes (AOVs past R, G, B); the graph concatenates them
in the declared order and runs the same function as the single-tensor export. Values are
scene-linear (``SupportsSceneLinear``: true, ``Gain`` 1: the net encodes highlights itself).
``Padding`` is 1 because the graph pads to its stride itself (reflecting the image, as the server
does); ``KeepAspectRatio`` false: the graph never resizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import torch
from torch import nn

from plateforge_server.export.functions import ChannelGroup, FrameFunction
from plateforge_server.modelcard import ModelCard

__all__ = ["FLAME_MINIMUM_VERSION", "FlameInput", "FlameModule", "flame_inputs", "flame_sidecar"]

#: The first Flame whose sidecar reads per-input ``Channels`` (What's New in 2025.2).
FLAME_MINIMUM_VERSION: Final = "2025.2"
_COLOUR_TOKENS: Final = "RGB"


@dataclass(frozen=True)
class FlameInput:
    """One input of the Flame graph: a node input of ``kind`` carrying ``channels`` of ``group``."""

    name: str
    kind: str  # Front, Back, Matte, Aux
    channels: tuple[str, ...]
    token: str  # the sidecar's Channels: "RGB", "RG" or "A"
    note: str


def _kind(group: ChannelGroup, index: int) -> str:
    if group.source == "plate" and index == 0:
        return "Front"
    if group.source == "clean_plate":
        return "Back"
    if len(group.channels) == 1 and group.source in ("mask", "key", "band", "shown"):
        return "Matte"
    return "Aux"


def flame_inputs(function: FrameFunction) -> tuple[FlameInput, ...]:
    """The function's channel groups split into Flame node inputs (three colour channels or one
    matte channel each), in the order their channels enter the graph."""
    inputs = []
    for group in function.inputs:
        chunks = [group.channels[k : k + 3] for k in range(0, len(group.channels), 3)]
        for index, chunk in enumerate(chunks):
            name = group.source if len(chunks) == 1 else f"{group.source}_{index}"
            token = "A" if len(chunk) == 1 else _COLOUR_TOKENS[: len(chunk)]
            note = group.note if index == 0 else f"{group.note} (channels {', '.join(chunk)})"
            inputs.append(FlameInput(name, _kind(group, index), tuple(chunk), token, note))
    return tuple(inputs)


class FlameModule(nn.Module):
    """The per-frame function over several NCHW inputs, concatenated in order."""

    def __init__(self, function: FrameFunction) -> None:
        super().__init__()
        self.function = function

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.function(torch.cat(parts, dim=1))
        return result


def flame_sidecar(card: ModelCard, function: FrameFunction) -> dict[str, Any]:
    """The JSON sidecar (``MODEL.json`` beside ``MODEL.onnx``) for Flame's Inference node."""
    inputs = [
        {"Name": i.name, "Description": i.note, "Type": i.kind, "Gain": 1.0, "Channels": i.token}
        for i in flame_inputs(function)
    ]
    outputs = []
    for group in function.outputs:
        matte = group.channels == ("A",)
        outputs.append(
            {
                "Name": group.source,
                "Description": group.note,
                "Type": "OutMatte" if matte else "Result",
                "InverseGain": 1.0,
                "Channels": "A" if matte else _COLOUR_TOKENS,
            }
        )
    description = card.description or f"plateforge {card.tool} model"
    return {
        "ModelDescription": {
            "MinimumVersion": FLAME_MINIMUM_VERSION,
            "Name": f"{card.name}@{card.version}",
            "Description": f"{description} (plateforge export; frames at least {function.min_size} px each way)",
            "SupportsSceneLinear": True,
            "KeepAspectRatio": False,
            "Padding": 1,
            "Inputs": inputs,
            "Outputs": outputs,
        }
    }
