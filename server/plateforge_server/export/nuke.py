"""Foundry Nuke's CatFileCreator: which Nuke channel carries each channel of the one input tensor.

CatFileCreator (Nuke 13 and later) turns a TorchScript file with one input and one output tensor
into a ``.cat`` for the Inference node. Its Channels In / Channels Out knobs take Nuke channel
names from a fixed list of 19 (".cat File Creation Reference", Appendix: Channel Names,
https://learn.foundry.com/nuke/developers/14.0/catfilecreationreferenceguide/appendix.html);
images beyond R, G, B, A reach the model by shuffling them into the other channels of that list
("Models with Multiple Inputs: Channel Shuffling" in the same guide). :func:`nuke_channels` picks
those slots in a fixed order: the plate in rgba.red/green/blue, the first one-channel input in
rgba.alpha, everything else in the order of :data:`EXTRA_SLOTS`.

Targeted: Nuke 15.1 and later, whose Inference node runs torch 2.1 (Foundry's guide asks for
TorchScript saved by a compatible torch). The files are traced by the server's torch (the export
README names the version) from operators torch 2.1 has (convolutions, reflection padding,
nearest upsampling, elementwise ops), in a TorchScript archive whose file format version (3) is
within what torch 2.1 reads (1 to 10, ``kMaxSupportedFileFormatVersion``); the tests check that
version. Not load-tested under torch 2.1 itself: its only build on PyPI for Python 3.11 is
``torch-2.1.2-cp311-cp311-manylinux1_x86_64.whl``, 670 MB, CUDA, which needs several GB of
nvidia-* wheels to import.
"""

from __future__ import annotations

from typing import Any, Final

from plateforge.errors import UsageError
from plateforge_server.export.functions import FrameFunction

__all__ = ["EXTRA_SLOTS", "NUKE_CHANNELS", "catfilecreator_settings", "nuke_channels"]

#: The 19 channels CatFileCreator accepts (Appendix: Channel Names).
NUKE_CHANNELS: Final = (
    "rgba.red",
    "rgba.green",
    "rgba.blue",
    "rgba.alpha",
    "depth.Z",
    "forward.u",
    "forward.v",
    "backward.u",
    "backward.v",
    "deep.front",
    "deep.back",
    "disparityL.x",
    "disparityL.y",
    "disparityR.x",
    "disparityR.y",
    "mask.a",
    "rotopaint_mask.a",
    "mask_planartrack.a",
    "mask_splinewarp.a",
)
#: Where channels past the plate's R, G, B and the first matte go, in this order.
EXTRA_SLOTS: Final = tuple(c for c in NUKE_CHANNELS if not c.startswith("rgba."))


def nuke_channels(function: FrameFunction) -> tuple[list[str], list[str]]:
    """(Channels In, Channels Out): one Nuke channel per input and output tensor channel, in order."""
    extra = list(EXTRA_SLOTS)
    alpha_free = True
    channels_in: list[str] = []
    for group in function.inputs:
        if group.source == "plate":
            channels_in += ["rgba.red", "rgba.green", "rgba.blue"]
            leftover = group.channels[3:]
        elif len(group.channels) == 1 and alpha_free:
            channels_in.append("rgba.alpha")
            alpha_free = False
            leftover = ()
        else:
            leftover = group.channels
        for _ in leftover:
            if not extra:
                raise UsageError(
                    f"the model reads {len(function.input_channels)} channels; CatFileCreator offers "
                    f"{len(NUKE_CHANNELS)} Nuke channels"
                )
            channels_in.append(extra.pop(0))
    channels_out: list[str] = []
    for group in function.outputs:
        channels_out += ["rgba.alpha"] if group.channels == ("A",) else ["rgba.red", "rgba.green", "rgba.blue"]
    return channels_in, channels_out


def catfilecreator_settings(function: FrameFunction, *, torchscript: str, cat: str, model_id: str) -> dict[str, Any]:
    """The CatFileCreator knob values (knob name -> value) and, per Nuke channel, what it holds."""
    channels_in, channels_out = nuke_channels(function)
    return {
        "knobs": {
            "torchScriptFile": torchscript,
            "catFile": cat,
            "channelsIn": ", ".join(channels_in),
            "channelsOut": ", ".join(channels_out),
            "modelId": model_id,
            "outputScale": 1,
        },
        "channels_in": dict(zip(channels_in, function.input_channels, strict=True)),
        "channels_out": dict(zip(channels_out, function.output_channels, strict=True)),
    }
