"""A compact U-Net for image-to-image work in scene-linear light (cleanup, look, matte).

The whole net is in this file. Read it top to bottom:

1. **Values.** Plates are scene-linear: 0 is black, 1 is diffuse white, highlights reach 100 and
   more, and a few grade operations leave small negatives. A conv net trained on such values is
   dominated by the highlights, so the net never sees them raw: :func:`encode` maps every input
   channel (masks too) through ``sign(x) * log1p(|x|)`` -- close to ``x`` near 0, about 4.6 at
   100, odd so negatives survive -- and :func:`decode` (``sign(y) * expm1(|y|)``) is its exact
   inverse within float rounding. Training and inference both call these two functions, so the
   net's inputs, outputs and losses all live in encoded space.
2. **Config.** :class:`UNetConfig` is a frozen dataclass whose every default is commented; it
   round-trips through a JSON-safe dict (:meth:`UNetConfig.to_dict`) that checkpoints store, and
   :data:`SIZES` names three presets (:meth:`UNetConfig.preset`).
3. **Net.** :class:`UNet`: ``depth`` times (``blocks`` 3x3 conv units, then a stride-2 conv unit
   that halves the size and doubles the width up to ``max_width``), ``blocks`` units at the
   bottom, then back up: nearest-neighbour 2x upsampling and a 3x3 conv unit, concatenation with
   the skip from the same level, ``blocks`` units. A 1x1 conv makes the output channels. A conv
   unit is conv -> norm -> SiLU. With ``equivariant`` the way down is a stride-1 unit then a
   ``[1, 2, 1]`` binomial blur sampled every other pixel (BlurPool: Zhang, "Making Convolutional
   Networks Shift-Invariant Again", ICML 2019), the way up is bilinear, and the convs pad by
   repeating the edge instead of with zeros (a zero border tells a net where the frame's edge is,
   so near it the answer depends on where the picture sits in the frame: Islam et al., "How Much
   Position Information Do Convolutional Neural Networks Encode?", ICLR 2020). The answer then
   moves with the picture under a camera move instead of swimming against it (the relight's
   temporal stability, :mod:`plateforge_server.training.temporal`).
4. **Residual output.** With ``residual_from`` set, output channel ``k`` is input channel
   ``residual_from[k]`` plus what the net predicts, and the last conv starts at zero: a fresh
   cleanup or look net is the identity, and training only learns the change. With
   ``residual_dead_zone`` an eval-mode net (validation, serving, export) soft-thresholds the
   prediction (``sign(c) * max(|c| - t, 0)``) before adding it: a correction smaller than ``t``
   (encoded) is dropped, so where the net has nothing sure to add, the output is exactly the
   residual input. Training (train mode) sees the prediction whole, as dropout's nets do: a
   threshold in the training forward let the net push its small corrections past it (measured on
   the relight's tune seed 100: warp error 2.2x the fitted affine's), and a fresh net, whose
   predictions all start inside the zone, would get no gradient.
5. **Any size.** ``forward`` takes ``(N, C, H, W)`` with any ``H, W >= 1``: it pads the bottom
   and right edges to a multiple of ``2 ** depth`` by reflection (:func:`pad_to_multiple`) and
   crops the result back, so odd sizes work and the padding never shows as a dark border.
6. **Local, so it tiles.** The norm is *per pixel*: "group" normalises each group of channels at
   each pixel on its own, never over the image. (Torch's ``GroupNorm`` averages over the whole
   tensor, so an output pixel would depend on every input pixel: a 4K frame cut into tiles would
   give a different answer from the frame whole, and a net trained on 256-pixel crops would see
   different statistics on a full plate.) Every output pixel therefore depends only on input
   pixels within :attr:`UNet.receptive_field` of it, which is what lets
   :mod:`plateforge_server.inference.tiling` cut frames into tiles and still give exactly the
   untiled result.

Weights are initialised from ``seed`` with a generator of their own, so the same config and seed
give the same net bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from plateforge.errors import FrameError, UsageError

__all__ = [
    "CONFIG_VERSION",
    "SIZES",
    "Norm",
    "PresetSize",
    "UNet",
    "UNetConfig",
    "decode",
    "encode",
    "pad_to_multiple",
]

Norm = Literal["group", "none"]

#: Version of the dict :meth:`UNetConfig.to_dict` writes; :meth:`UNetConfig.from_dict` refuses others.
CONFIG_VERSION: Final = 3
#: Version 1 had no ``residual_gate`` (read as None: no gate); versions 1 and 2 no ``equivariant``
#: and no ``residual_dead_zone`` (read as False and 0: the nets they describe were built without).
_KNOWN_VERSIONS: Final = (1, 2, 3)


# -- values --------------------------------------------------------------------------------------


def encode(x: torch.Tensor) -> torch.Tensor:
    """Scene-linear values -> what the net sees: ``sign(x) * log1p(|x|)``, elementwise.

    Near 0 this is ``x`` (slope 1), 1.0 becomes 0.69, 100 becomes 4.6 and 10,000 becomes 9.2, so
    highlights neither dominate the loss nor saturate. Odd, so negatives keep their sign.
    """
    return torch.sign(x) * torch.log1p(torch.abs(x))


def decode(y: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`encode`: ``sign(y) * expm1(|y|)``. Values past about 88 overflow to Inf."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` (``..., H, W``) padded at the bottom and right so H and W are multiples of ``multiple``.

    Padding reflects the image about its last row and column, so no dark or smeared border enters
    the net. An axis shorter than the padding it needs (a 5-pixel-wide strip on a depth-4 net)
    cannot be reflected that far; such inputs repeat their edge pixels instead.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# -- config --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetConfig:
    """Everything that defines a :class:`UNet`'s shape. Checkpoints store :meth:`to_dict`."""

    in_channels: int = 3  # channels the net reads, e.g. R, G, B of the plate plus a mask = 4
    out_channels: int = 3  # channels the net writes, e.g. R, G, B of the cleaned plate
    base_width: int = 32  # feature channels at full resolution; each level down doubles them
    max_width: int = 256  # ...up to this many, so deep levels of wide nets stay affordable
    depth: int = 4  # number of 2x downsamplings; inputs are padded to a multiple of 2 ** depth
    blocks: int = 2  # 3x3 conv units per level, on the way down, at the bottom and on the way up
    norm: Norm = "group"  # "group": per-pixel group norm (tiling-safe); "none": conv -> SiLU only
    norm_groups: int = 8  # channel groups normalised together; fewer where a level has < 8 per group
    # Output channel k = input channel residual_from[k] + the net's prediction (last conv starts
    # at zero, so a fresh net is the identity); None: the net predicts outputs outright.
    residual_from: tuple[int, ...] | None = None
    # With residual_from: an input channel that, where it is above 0, makes the output exactly the
    # residual input there (the prediction is dropped). The learned cleanup gates on "a
    # neighbouring frame showed this pixel": there the temporal fill is exact (45-57 dB on the
    # bench) and a net only loses to it; the net decides what no frame shows. None: no gate.
    residual_gate: int | None = None
    # With residual_from: in eval mode the prediction is soft-thresholded by this much (encoded
    # units) before it is added (module doc, item 4). The learned relight's small corrections flickered from frame to
    # frame where the truth needs next to none beyond the fitted affine it is residual on. 0: off.
    residual_dead_zone: float = 0.0
    # Blur-pool downsampling, bilinear upsampling and edge-repeating conv padding instead of
    # stride-2 convs, nearest upsampling and zeros (module doc, item 3): the net's answer moves with
    # the picture. Costs the down convs at full rate. False: the classic layout.
    equivariant: bool = False

    def __post_init__(self) -> None:
        problems = []
        for name in ("in_channels", "out_channels", "base_width", "max_width", "blocks", "norm_groups"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        if type(self.depth) is not int or not 1 <= self.depth <= 7:
            problems.append(f"depth must be an integer from 1 to 7, got {self.depth!r}")
        zone = self.residual_dead_zone
        if isinstance(zone, bool) or not isinstance(zone, (int, float)) or not 0.0 <= zone < 1.0:
            problems.append(f"residual_dead_zone must be a number from 0 up to 1 (encoded units), got {zone!r}")
        elif zone > 0 and self.residual_from is None:
            problems.append("residual_dead_zone needs residual_from (it thresholds the residual prediction)")
        if type(self.equivariant) is not bool:
            problems.append(f"equivariant must be true or false, got {self.equivariant!r}")
        if self.norm not in get_args(Norm):
            problems.append(f"norm must be one of {list(get_args(Norm))}, got {self.norm!r}")
        if type(self.base_width) is int and type(self.max_width) is int and self.max_width < self.base_width:
            problems.append(f"max_width ({self.max_width}) is below base_width ({self.base_width})")
        if self.norm == "group" and self.base_width == 1:
            problems.append("norm 'group' needs base_width >= 2 (one channel normalised alone is constant)")
        if self.residual_from is not None:
            index = self.residual_from
            if not isinstance(index, tuple) or any(type(k) is not int for k in index):
                problems.append(f"residual_from must be a tuple of input channel indices, got {index!r}")
            elif len(index) != self.out_channels:
                problems.append(
                    f"residual_from has {len(index)} entries; it needs one per output channel ({self.out_channels})"
                )
            elif type(self.in_channels) is int and any(not 0 <= k < self.in_channels for k in index):
                problems.append(f"residual_from {index} names input channels outside 0..{self.in_channels - 1}")
        gate = self.residual_gate
        if gate is not None:
            if self.residual_from is None:
                problems.append("residual_gate needs residual_from (it keeps the residual input where it is set)")
            if type(gate) is not int or (type(self.in_channels) is int and not 0 <= gate < self.in_channels):
                last = self.in_channels - 1
                problems.append(f"residual_gate must be an input channel index in 0..{last}, got {gate!r}")
        if problems:
            raise UsageError("invalid UNet config: " + "; ".join(problems))

    # -- presets ---------------------------------------------------------------------------------

    @classmethod
    def preset(
        cls,
        name: str,
        *,
        in_channels: int,
        out_channels: int,
        residual_from: tuple[int, ...] | None = None,
        norm: Norm = "group",
        equivariant: bool = False,
        residual_dead_zone: float = 0.0,
    ) -> UNetConfig:
        """The :data:`SIZES` preset ``name`` for these channels; unknown names are refused with the list."""
        if name not in SIZES:
            raise UsageError(f"unknown UNet size {name!r}; known sizes: {sorted(SIZES)}")
        size = SIZES[name]
        return cls(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=size.base_width,
            max_width=size.max_width,
            depth=size.depth,
            blocks=size.blocks,
            norm=norm,
            residual_from=residual_from,
            equivariant=equivariant,
            residual_dead_zone=residual_dead_zone,
        )

    # -- derived shape ---------------------------------------------------------------------------

    @property
    def widths(self) -> tuple[int, ...]:
        """Feature channels at each level, full resolution first: ``depth + 1`` entries."""
        return tuple(min(self.base_width << level, self.max_width) for level in range(self.depth + 1))

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (``2 ** depth``); tiles are aligned to it."""
        return 1 << self.depth

    @property
    def receptive_field(self) -> int:
        """Radius in pixels: an output pixel depends only on input pixels at most this far away.

        Exact for this architecture (zero-weight accidents aside): it follows the interval of
        input pixels that an output pixel reads back through every conv, stride-2 conv and
        upsampling, down every skip and the deep path, for each of the ``2 ** depth`` phases
        an output pixel can have relative to the downsampling grid, and takes the worst.
        """

        def grow(span: tuple[int, int], by: int) -> tuple[int, int]:
            return span[0] - by, span[1] + by

        def needs(level: int, span: tuple[int, int]) -> tuple[int, int]:
            """Pixels of level ``level``'s input that its decoder output ``span`` reads (same level)."""
            if level == self.depth:  # the bottom: `blocks` 3x3 units
                return grow(span, self.blocks)
            joined = grow(span, self.blocks)  # decoder units read the concatenated tensor
            skip = grow(joined, self.blocks)  # the skip is the encoder units' output
            upsampled = grow(joined, 1)  # the 3x3 unit after upsampling
            if self.equivariant:  # bilinear 2x: pixel u reads u / 2 - 1/4 and its neighbour
                below = needs(level + 1, ((upsampled[0] - 1) // 2, (upsampled[1] + 1) // 2))
                # the 3-tap blur sampled at 2x, then the stride-1 3x3 unit, then the level's units
                deep = grow((2 * below[0] - 1, 2 * below[1] + 1), self.blocks + 1)
            else:
                below = needs(level + 1, (upsampled[0] // 2, upsampled[1] // 2))  # nearest 2x upsampling
                deep = grow((2 * below[0] - 1, 2 * below[1] + 1), self.blocks)  # stride-2 3x3, then units
            return min(skip[0], deep[0]), max(skip[1], deep[1])

        radius = 0
        for phase in range(self.size_multiple):
            low, high = needs(0, (phase, phase))
            radius = max(radius, phase - low, high - phase)
        return radius

    # -- saving ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field plus ``version``; :meth:`from_dict` rebuilds the config."""
        data: dict[str, Any] = {"version": CONFIG_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UNetConfig:
        """The config :meth:`to_dict` wrote. Refuses unknown versions, unknown and missing fields."""
        version = data.get("version")
        if version not in _KNOWN_VERSIONS:
            known = list(_KNOWN_VERSIONS)
            raise UsageError(f"UNet config version {version!r} is not one this code reads; known versions: {known}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"version"})
        newer = {1: {"residual_gate", "equivariant", "residual_dead_zone"}, 2: {"equivariant", "residual_dead_zone"}}
        optional = newer.get(int(version), set())
        missing = sorted(names - set(data) - optional)
        if unknown or missing:
            raise UsageError(f"UNet config dict: unknown fields {unknown}, missing fields {missing}")
        values = {name: data[name] for name in names if name in data}
        residual = values["residual_from"]
        if isinstance(residual, list):
            values["residual_from"] = tuple(residual)
        return cls(**values)


@dataclass(frozen=True)
class PresetSize:
    """The shape fields a named preset fixes; the channels come from the tool."""

    base_width: int
    max_width: int
    depth: int
    blocks: int


#: Named sizes for :meth:`UNetConfig.preset`. Figures are for 3 channels in and 3 out (the tests
#: pin them): receptive-field radius in pixels, and parameters.
SIZES: Final[Mapping[str, PresetSize]] = {
    # Few-shot look/relight, CPU-friendly: widths 16-128, 3 levels, one unit each. 43 px, 0.49 M.
    "small": PresetSize(base_width=16, max_width=128, depth=3, blocks=1),
    # The default for cleanup and matte: the classic 4-level U-Net at half its width, capped at
    # 256 (32, 64, 128, 256, 256). 137 px, 7.1 M.
    "medium": PresetSize(base_width=32, max_width=256, depth=4, blocks=2),
    # Many keyframes, a GPU and time: the classic widths, capped at 512 (64 ... 512, 512). 137 px, 28.2 M.
    "large": PresetSize(base_width=64, max_width=512, depth=4, blocks=2),
}


# -- layers --------------------------------------------------------------------------------------


class PixelGroupNorm(nn.Module):
    """GroupNorm over the channels of each group *at each pixel* (never over the image).

    Per-pixel statistics keep the net local, so tiles give the untiled answer and a net trained on
    crops behaves the same on a whole plate. Statistics are taken in float32 even under autocast.
    """

    def __init__(self, channels: int, groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        # The most groups <= `groups` that divide the channels and leave >= 8 channels per group
        # (else one group). Per-pixel statistics of fewer channels are noisy: a group whose
        # channels nearly agree at a pixel has a tiny variance, and dividing by it magnifies
        # rounding (measured: 4 channels per group magnify it about 10x more than 8 do).
        self.groups = max(g for g in range(1, groups + 1) if channels % g == 0 and (channels // g >= 8 or g == 1))
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        grouped = x.float().reshape(n, self.groups, c // self.groups, h, w)
        # Two plain means, not torch.var_mean: over a middle dim on CPU that is about 10x slower.
        centred = grouped - grouped.mean(dim=2, keepdim=True)
        var = (centred * centred).mean(dim=2, keepdim=True)
        normed = (centred * torch.rsqrt(var + self.eps)).reshape(n, c, h, w).to(x.dtype)
        return normed * self.weight.view(1, c, 1, 1).to(x.dtype) + self.bias.view(1, c, 1, 1).to(x.dtype)


class ConvUnit(nn.Sequential):
    """3x3 conv (stride 1, or 2 to halve the size) -> norm -> SiLU."""

    def __init__(self, config: UNetConfig, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        norm: nn.Module = PixelGroupNorm(out_channels, config.norm_groups) if config.norm == "group" else nn.Identity()
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size=3,
                stride=stride,
                padding=1,
                padding_mode="replicate" if config.equivariant else "zeros",
            ),
            norm,
            nn.SiLU(),
        )


class BlurPool(nn.Module):
    """Halves the size: a ``[1, 2, 1] x [1, 2, 1] / 16`` blur per channel, sampled every other pixel
    (edges repeat, so the frame's border is not darkened). The blur takes out what the subsampling
    would alias, which is what makes a stride-2 net's answer change with the picture's sub-grid phase."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        # Not persistent: a constant, rebuilt with the net, never read from a checkpoint.
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel
        assert isinstance(kernel, torch.Tensor)  # a buffer (mypy sees Module attributes as Tensor | Module)
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.conv2d(padded, kernel.to(x.dtype), stride=2, groups=self.channels)


def _down(config: UNetConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The unit that halves the size: a stride-2 conv unit, or (``equivariant``) a stride-1 one
    then :class:`BlurPool`."""
    if config.equivariant:
        return nn.Sequential(ConvUnit(config, in_channels, out_channels), BlurPool(out_channels))
    return ConvUnit(config, in_channels, out_channels, stride=2)


def _units(config: UNetConfig, in_channels: int, out_channels: int) -> nn.Sequential:
    """``config.blocks`` conv units; the first maps ``in_channels`` to ``out_channels``."""
    return nn.Sequential(
        *(ConvUnit(config, in_channels if k == 0 else out_channels, out_channels) for k in range(config.blocks))
    )


# -- the net -------------------------------------------------------------------------------------


class UNet(nn.Module):
    """``(N, in_channels, H, W)`` encoded values -> ``(N, out_channels, H, W)`` encoded values, any H, W."""

    def __init__(self, config: UNetConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        levels = range(config.depth)
        # Down: units at each level (kept as the skip), then a stride-2 unit to the next level.
        self.encoder = nn.ModuleList(
            _units(config, config.in_channels if level == 0 else widths[level], widths[level]) for level in levels
        )
        self.down = nn.ModuleList(_down(config, widths[level], widths[level + 1]) for level in levels)
        self.bottom = _units(config, widths[-1], widths[-1])
        # Up, listed from the top level like the encoder and visited in reverse by forward.
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear" if config.equivariant else "nearest"),
                ConvUnit(config, widths[level + 1], widths[level]),
            )
            for level in levels
        )
        self.decoder = nn.ModuleList(_units(config, 2 * widths[level], widths[level]) for level in levels)
        self.head = nn.Conv2d(widths[0], config.out_channels, kernel_size=1)
        self._residual = list(config.residual_from) if config.residual_from is not None else None
        self.reset_parameters(seed=seed)

    def reset_parameters(self, *, seed: int = 0) -> None:
        """Deterministic init from ``seed``: He-normal convs, zero biases, unit norms; a zero head
        for residual nets (so they start as the identity)."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    # He init on a CPU generator, copied in, so the result is the same on any device.
                    weight = torch.empty(module.weight.shape)
                    nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
                    module.weight.copy_(weight)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, PixelGroupNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            if self._residual is not None:
                self.head.weight.zero_()
            else:  # a plain 1x1 projection with nothing after it: unit gain
                weight = torch.empty(self.head.weight.shape)
                nn.init.xavier_normal_(weight, generator=generator)
                self.head.weight.copy_(weight)

    @property
    def receptive_field(self) -> int:
        """Radius in pixels of the input an output pixel depends on (see :attr:`UNetConfig.receptive_field`)."""
        return self.config.receptive_field

    @property
    def size_multiple(self) -> int:
        """``2 ** depth``: forward pads to a multiple of this; tiles are aligned to it."""
        return self.config.size_multiple

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """The padding :meth:`forward` applies (tiling pads whole frames the same way)."""
        return pad_to_multiple(x, self.size_multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[2] < 1 or x.shape[3] < 1:
            raise FrameError(
                f"UNet expects (N, {self.config.in_channels}, H, W) with H, W >= 1; got shape {tuple(x.shape)}"
            )
        height, width = x.shape[2], x.shape[3]
        h = self.pad(x)
        skips = []
        for units, down in zip(self.encoder, self.down, strict=True):
            h = units(h)
            skips.append(h)
            h = down(h)
        h = self.bottom(h)
        for up, units, skip in zip(reversed(self.up), reversed(self.decoder), reversed(skips), strict=True):
            h = units(torch.cat([up(h), skip], dim=1))
        y: torch.Tensor = self.head(h)[:, :, :height, :width]
        if self._residual is not None:
            zone = self.config.residual_dead_zone
            if zone > 0 and not self.training:  # module doc, item 4: at inference only
                y = torch.sign(y) * torch.clamp(y.abs() - zone, min=0.0)
            y = y + x[:, self._residual]
            gate = self.config.residual_gate
            if gate is not None:  # exactly the residual input where the gate is set (no gradient there)
                y = torch.where(x[:, gate : gate + 1] > 0, x[:, self._residual], y)
        return y
