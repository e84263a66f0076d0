"""The per-frame function a served learned model computes, as one torch module over one NCHW tensor.

What :mod:`plateforge_server.tools.learned` does around the net with numpy, written here as tensor
ops, so that one traced graph (ONNX, TorchScript) gives the server's result for a frame:

* ``unet`` and ``affine-unet`` (relight, look, pairs): the plate's declared channels (R, G, B,
  then any AOVs), encoded, through the net (an affine-unet applies its fitted 3x4 first), decoded:
  the new R, G, B.
* ``unet`` with a ``mask`` input (inpaint): R, G, B zeroed under the mask as training did, the mask
  beside them; the net's R, G, B composited back with the soft mask, the plate kept bit for bit
  where the mask is 0.
* ``guided-unet`` (the learned cleanup): the classical fill is **not** a tensor op (it aligns
  neighbouring frames with OpenCV), so it is an input: R, G, B, mask, the fill's R, G, B and the
  "a neighbour showed this pixel" plane, as :func:`plateforge_server.tools.cleanup.classical.fill_plate`
  makes them. The guide planes, the net and the composite are in the graph.
* ``matte-unet`` (the learned matte): the classical difference key and its unknown band (OpenCV
  morphology and blur) are inputs: plate R, G, B, clean plate R, G, B, the key's alpha and the band
  (1 inside). The net's alpha, clipped to [0, 1], is taken inside the band, the key elsewhere, as
  :func:`plateforge_server.tools.matte.guide.merge` does. The output is the alpha; the foreground
  and composite are the host's premultiply and merge.

**Any size.** Height and width stay symbolic when traced: the graph pads the bottom and right
edges by reflection to the net's stride (``2 ** depth``) and crops back, as
:meth:`~plateforge_server.nets.unet.UNet.forward` does. Reflection needs a frame at least one
stride high and wide (:attr:`FrameFunction.min_size`); the server's own padding switches to edge
repeat below that, which a traced graph cannot branch on, so such tiny frames are refused by
the README's contract, not approximated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

from plateforge.errors import UsageError
from plateforge_server.modelcard import ModelCard
from plateforge_server.nets.unet import UNet
from plateforge_server.tools.cleanup.guide import SHOWN_CHANNEL
from plateforge_server.tools.matte.guide import KEY_CHANNEL
from plateforge_server.tools.relight.affine_start import AFFINE_KEY, AffineUNet

__all__ = ["ChannelGroup", "FrameFunction", "frame_function"]

_RGB: Final = ("R", "G", "B")


@dataclass(frozen=True)
class ChannelGroup:
    """Consecutive channels of the one input (or output) tensor that come from one host image."""

    #: The model input they come from ("plate", "mask", "clean_plate") or a pre-pass's name.
    source: str
    #: Channel names, in tensor order.
    channels: tuple[str, ...]
    #: One line for the README: what the host feeds here (or what comes out).
    note: str


def encode(x: torch.Tensor) -> torch.Tensor:
    """:func:`plateforge_server.nets.unet.encode` in ops every runtime has: ONNX has no Log1p, so
    ``log(1 + |x|)`` (the same within float32 rounding of 1 + |x|: below 1e-7 absolute)."""
    return torch.sign(x) * torch.log(1.0 + torch.abs(x))


def decode(y: torch.Tensor) -> torch.Tensor:
    """:func:`plateforge_server.nets.unet.decode` as ``exp(|y|) - 1`` (ONNX has no Expm1)."""
    return torch.sign(y) * (torch.exp(torch.abs(y)) - 1.0)


def _classical(net: AffineUNet, encoded: torch.Tensor) -> torch.Tensor:
    """:meth:`AffineUNet.classical` with the encode and decode above."""
    affine: torch.Tensor = getattr(net, AFFINE_KEY)
    linear = decode(encoded[:, :3])
    mapped = torch.einsum("ck,nkhw->nchw", affine[:, :3], linear) + affine[:, 3].view(1, 3, 1, 1)
    return encode(mapped)


def _core(net: UNet, x: torch.Tensor) -> torch.Tensor:
    """``net`` over encoded ``x`` (N, C, H, W), H and W symbolic: pad to the stride, run, crop,
    add the residual (its dead zone and its gate) exactly as :meth:`UNet.forward` does in eval mode."""
    height, width = x.shape[2], x.shape[3]
    multiple = net.size_multiple
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    h = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
    skips = []
    for units, down in zip(net.encoder, net.down, strict=True):
        h = units(h)
        skips.append(h)
        h = down(h)
    h = net.bottom(h)
    for up, units, skip in zip(reversed(net.up), reversed(net.decoder), reversed(skips), strict=True):
        h = units(torch.cat([up(h), skip], dim=1))
    y: torch.Tensor = net.head(h)[:, :, :height, :width]
    residual = net.config.residual_from
    if residual is not None:
        base = x[:, list(residual)]
        zone = net.config.residual_dead_zone
        if zone > 0:  # the served (eval-mode) net drops small corrections (unet module doc, item 4)
            y = torch.sign(y) * torch.clamp(y.abs() - zone, min=0.0)
        y = y + base
        gate = net.config.residual_gate
        if gate is not None:
            y = torch.where(x[:, gate : gate + 1] > 0, base, y)
    return y


def _zeroed(rgb: torch.Tensor, weight: torch.Tensor, *, strict_keep: bool) -> torch.Tensor:
    """R, G, B zeroed under the soft mask in encoded space (learned._zeroed / guide_planes)."""
    keep = 1.0 - weight
    zeroed = decode(encode(rgb) * keep)
    # _zeroed keeps the plate where keep >= 1; guide_planes where the mask <= 0: the same pixels.
    untouched = keep >= 1.0 if strict_keep else weight <= 0
    return torch.where(untouched, rgb, zeroed)


class FrameFunction(nn.Module):
    """One frame, ``(1, C_in, H, W)`` scene-linear float32 -> ``(1, C_out, H, W)`` float32."""

    def __init__(
        self,
        net: UNet,
        *,
        kind: str,
        inputs: tuple[ChannelGroup, ...],
        outputs: tuple[ChannelGroup, ...],
    ) -> None:
        super().__init__()
        self.net = net
        self.kind = kind
        self.inputs = inputs
        self.outputs = outputs

    @property
    def input_channels(self) -> tuple[str, ...]:
        return tuple(f"{g.source}.{c}" for g in self.inputs for c in g.channels)

    @property
    def output_channels(self) -> tuple[str, ...]:
        return tuple(f"{g.source}.{c}" for g in self.outputs for c in g.channels)

    @property
    def stride(self) -> int:
        """Frames are padded to a multiple of this inside the graph."""
        return self.net.size_multiple

    @property
    def min_size(self) -> int:
        """The smallest height and width the graph runs exactly as the server does."""
        return self.net.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "pairs":
            return self._pairs(x)
        if self.kind == "inpaint":
            return self._inpaint(x)
        if self.kind == "cleanup":
            return self._cleanup(x)
        return self._matte(x)

    def _pairs(self, x: torch.Tensor) -> torch.Tensor:
        encoded = encode(x)
        if isinstance(self.net, AffineUNet):
            encoded = torch.cat([_classical(self.net, encoded), encoded], dim=1)
        return decode(_core(self.net, encoded))

    def _inpaint(self, x: torch.Tensor) -> torch.Tensor:
        rgb, weight = x[:, 0:3], torch.clamp(x[:, 3:4], 0.0, 1.0)
        planes = torch.cat([_zeroed(rgb, weight, strict_keep=True), weight], dim=1)
        result = decode(_core(self.net, encode(planes)))
        blended = rgb * (1.0 - weight) + result * weight
        return torch.where(weight > 0, blended, rgb)

    def _cleanup(self, x: torch.Tensor) -> torch.Tensor:
        rgb, weight = x[:, 0:3], torch.clamp(x[:, 3:4], 0.0, 1.0)
        fill, shown = x[:, 4:7], x[:, 7:8]
        planes = torch.cat([_zeroed(rgb, weight, strict_keep=False), fill, weight, shown], dim=1)
        result = decode(_core(self.net, encode(planes)))
        # cleanup_classical.composite: the plate where the mask is 0, the soft blend elsewhere.
        blended = rgb * (1.0 - weight) + result * weight
        return torch.where(weight > 0, blended, rgb)

    def _matte(self, x: torch.Tensor) -> torch.Tensor:
        planes, band = x[:, 0:7], x[:, 7:8]
        predicted = decode(_core(self.net, encode(planes)))
        alpha = torch.where(band > 0.5, torch.clamp(predicted, 0.0, 1.0), planes[:, KEY_CHANNEL : KEY_CHANNEL + 1])
        return alpha


def _plate_channels(card: ModelCard) -> tuple[str, ...]:
    declared = next((tuple(s.channels) for s in card.inputs if s.name == "plate"), ())
    return declared or _RGB


def frame_function(card: ModelCard, net: UNet) -> FrameFunction:
    """The per-frame function of the model ``card`` describes, around its loaded ``net`` (eval mode)."""
    arch = card.net.arch
    names = [spec.name for spec in card.inputs]
    image = ChannelGroup("image", _RGB, "the model's result, scene-linear")
    if arch == "guided-unet":
        assert SHOWN_CHANNEL == 7  # the graph's channel order is guide_planes' order
        inputs: tuple[ChannelGroup, ...] = (
            ChannelGroup("plate", _RGB, "the plate, scene-linear"),
            ChannelGroup("mask", ("A",), "the paint-out mask in [0, 1] (1: paint out)"),
            ChannelGroup(
                "fill",
                _RGB,
                "the classical fill: cleanup-classical's fill_plate(...).rgb (aligned neighbouring frames, "
                "then spatial inpaint), the plate where the mask is 0",
            ),
            ChannelGroup(
                "shown",
                ("A",),
                "1 where an aligned neighbouring frame showed the masked pixel (fill_plate(...).shown), else 0",
            ),
        )
        return FrameFunction(net, kind="cleanup", inputs=inputs, outputs=(image,))
    if arch == "matte-unet":
        inputs = (
            ChannelGroup("plate", _RGB, "the plate, scene-linear"),
            ChannelGroup("clean_plate", _RGB, "the clean plate (the set without the subject), scene-linear"),
            ChannelGroup(
                "key",
                ("A",),
                "the classical difference key's alpha: matte-classical's key(plate, clean, KeySettings()) "
                "at default settings",
            ),
            ChannelGroup(
                "band",
                ("A",),
                "the unknown band (a trimap's grey: 1 where the net decides): matte_guide.band_of of the "
                "plate, clean plate and key",
            ),
        )
        alpha = ChannelGroup("alpha", ("A",), "the learned alpha in [0, 1] (premultiply the plate by it)")
        return FrameFunction(net, kind="matte", inputs=inputs, outputs=(alpha,))
    if arch in ("unet", "affine-unet") and "mask" in names:
        inputs = (
            ChannelGroup("plate", _RGB, "the plate, scene-linear"),
            ChannelGroup("mask", ("A",), "the mask in [0, 1] (1: fill)"),
        )
        return FrameFunction(net, kind="inpaint", inputs=inputs, outputs=(image,))
    if arch in ("unet", "affine-unet"):
        channels = _plate_channels(card)
        notes = "the plate's R, G, B" + (f" then AOV channels {', '.join(channels[3:])}" if channels[3:] else "")
        inputs = (ChannelGroup("plate", channels, notes + ", scene-linear"),)
        return FrameFunction(net, kind="pairs", inputs=inputs, outputs=(image,))
    raise UsageError(
        f"model {card.name}@{card.version}: net {arch!r} cannot be exported; exportable nets are unet, "
        "affine-unet, guided-unet and matte-unet (the generative fill is not)"
    )
