"""The README.md every export carries: what each channel of the input tensor must hold, what the
output holds, the size rule, and the host node's settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from plateforge_server.export.functions import ChannelGroup, FrameFunction
from plateforge_server.export.onnx_writer import OPSET
from plateforge_server.modelcard import ModelCard

__all__ = ["export_readme"]


def _channel_lines(groups: Sequence[ChannelGroup]) -> list[str]:
    """One line per group: the tensor channels it fills, their names, what goes there."""
    lines, index = [], 0
    for group in groups:
        last = index + len(group.channels) - 1
        span = f"{index}" if last == index else f"{index}-{last}"
        names = ", ".join(f"`{group.source}.{c}`" for c in group.channels)
        lines.append(f"- channel {span}: {names}: {group.note}")
        index = last + 1
    return lines


def export_readme(
    card: ModelCard,
    function: FrameFunction,
    *,
    fmt: str,
    files: Sequence[str],
    nuke: Mapping[str, Any] | None = None,
    flame_inputs: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The README text for one export."""
    lines = [
        f"# {card.name}@{card.version} ({card.tool}), exported for {fmt}",
        "",
        f"Made by `plateforge export` from weights sha256 `{card.weights_sha256}`; the model card "
        "(sources, licences, hashes) travels with it: `plateforge provenance FILE` prints it.",
        "",
        f"Files: {', '.join(files)}. Torch {torch.__version__} traced the graph; ONNX opset {OPSET}.",
        "",
        "## Input",
        "",
        "One NCHW float32 tensor, N = 1, scene-linear (no log, no sRGB, no gain: the graph encodes "
        "highlights itself). Channels in this order:",
        "",
    ]
    lines += _channel_lines(function.inputs)
    lines += ["", "## Output", "", "One NCHW float32 tensor, the same height and width:", ""]
    lines += _channel_lines(function.outputs)
    lines += [
        "",
        "## Size",
        "",
        f"Any height and width of at least {function.min_size} pixels: the graph pads the bottom and "
        f"right edges by reflection to a multiple of {function.stride} and crops the result back, as "
        "the server does. Frames are computed whole (the server tiles them with the same result).",
    ]
    prepass = [g for g in function.inputs if g.source in ("fill", "shown", "key", "band")]
    if prepass:
        lines += [
            "",
            "## What the host must compute first",
            "",
            "The served model runs a classical pre-pass that is not a tensor operation (OpenCV "
            "alignment, morphology). The export does not approximate it: the host feeds its result "
            "as the channels above, made by plateforge's own classical code (with plateforge installed):",
            "",
        ]
        for group in prepass:
            lines.append(f"- `{group.source}`: {group.note}")
    if flame_inputs:
        lines += ["", "## Flame", "", "Inference node inputs (the sidecar declares them):", ""]
        lines += [f"- `{name}` ({kind}, Channels {token})" for name, kind, token in flame_inputs]
        lines += ["", "Package with `inference_builder` (see the Flame docs) or load the .onnx directly."]
    if nuke is not None:
        knobs = nuke["knobs"]
        lines += [
            "",
            "## Nuke (15.1 and later)",
            "",
            "Shuffle each image into the Nuke channel named below, then CatFileCreator with these knobs "
            "(also in catfilecreator.json), then an Inference node reading the .cat:",
            "",
        ]
        lines += [f"- {name} = `{value}`" for name, value in knobs.items()]
        lines += ["", "Channels In, channel by channel:", ""]
        lines += [f"- `{slot}` <- `{what}`" for slot, what in nuke["channels_in"].items()]
    return "\n".join(lines) + "\n"
