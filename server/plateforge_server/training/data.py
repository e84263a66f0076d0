"""Training samples from a licence manifest: frames loaded once, random crops drawn from them.

Read top to bottom:

1. **Licence first.** :func:`load_training_data` calls
   :func:`plateforge_server.datasets.check_for_training` before it opens a single frame, so an
   unlicensed, forbidden, missing or changed source stops the run with a :class:`LicenceError`
   naming the file, before any training.
2. **Frames.** Which roles a run reads and what it makes of them is its tool's
   (:meth:`~plateforge_server.tools.interface.LearnedTool.load_data`: ``tools/pairs/examples.py``,
   ``tools/inpaint/examples.py``, ``tools/cleanup/examples.py``, ``tools/matte/examples.py``);
   :func:`load_training_data` asks the run's tool. The tools share the reading here: R, G, B are
   read once and kept as float32 in the net's encoded space
   (:func:`plateforge_server.nets.unet.encode`); masks are kept linear, in [0, 1] (a mask is a
   weight here, encoded only where it becomes a net input).
3. **Validation.** With two or more frames the last is held out (a centred window of at most
   ``validation_size`` pixels a side); with one, a few fixed crops of it are set aside from a
   generator of their own (not truly unseen data: a smoke check, said so in the card).
4. **Crops.** :class:`Sampler` draws a batch: a random frame and window per crop, an exposure
   change, flips; a tool whose net sees something the crops are not (the inpaint's holes) gives
   its data a ``cut`` that makes the batch from them. Everything comes from one ``numpy``
   generator seeded from the config, whose state checkpoints save (:meth:`Sampler.state`), so a
   resumed run draws exactly the crops the uninterrupted run would have.

**Why exposure jitter is valid in scene-linear.** Scene-linear values are proportional to light,
so opening the exposure by ``u`` stops multiplies every value by ``2**u``. The edits a comp learns
(colour matrices, gains, paint-outs that copy or synthesise plate pixels, keys of premultiplied
images) are homogeneous: ``f(k * x) == k * f(x)``, so scaling input *and* target by the same
``2**u`` gives another true example of the same edit at another exposure, and the net learns
not to depend on the absolute level. The scaling is applied to the linear values (decode, scale,
encode), never to encoded ones, where it would be a non-linear change. A look that is *not*
homogeneous (a tone curve, a clip) is taught a lie by jitter: set ``exposure_jitter = 0`` then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from plateforge.errors import ExrError, FrameError, ManifestError, NonFiniteError, PlateforgeError, UsageError
from plateforge.exr import StrPath, read_exr
from plateforge.manifest_format import (
    Manifest,
    Pair,
    SourceFile,
    check_for_training,
    load_manifest,
    pairs,
    verified_path,
)
from plateforge.review.colour import ColourConversion, plate_to_linear
from plateforge_server.training.config import TrainConfig

__all__ = [
    "RGB",
    "Batch",
    "Cut",
    "Sampler",
    "TrainFrame",
    "TrainingData",
    "check_same_size",
    "decode_planes",
    "encode_planes",
    "focus_window",
    "join_batches",
    "licensed_groups",
    "load_training_data",
    "read_planes",
    "split_validation",
    "validation_window",
]

#: Channels read from every image source, in this order.
RGB = ("R", "G", "B")
log = logging.getLogger("plateforge_server.training")
#: Fixed validation crops taken from a dataset of one frame.
_VALIDATION_CROPS = 4


def encode_planes(x: np.ndarray) -> np.ndarray:
    """:func:`plateforge_server.nets.unet.encode` in numpy: ``sign(x) * log1p(|x|)``, float32."""
    return np.asarray(np.sign(x) * np.log1p(np.abs(x)), dtype=np.float32)


def decode_planes(y: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode_planes`: ``sign(y) * expm1(|y|)``, float32."""
    return np.asarray(np.sign(y) * np.expm1(np.abs(y)), dtype=np.float32)


@dataclass(frozen=True)
class TrainFrame:
    """One training frame: image planes ``(3, H, W)`` encoded, and an optional mask ``(H, W)`` linear."""

    number: int
    #: What the net reads (the plate, in "pairs" mode the input), encoded.
    image: np.ndarray
    #: What it should write, encoded (the plate itself in "inpaint" mode).
    target: np.ndarray
    #: "pairs" and "cleanup": where the loss counts; "inpaint": the shot's own roto (no holes under it).
    mask: np.ndarray | None
    #: Image channels that hold light (exposure jitter scales these only); None: all of them.
    light_channels: int | None = None
    #: Flat pixel indices crops are centred on most of the time (where the loss counts); None: anywhere.
    focus: np.ndarray | None = None
    #: False when the target is not light (an alpha): exposure augmentation leaves it alone.
    target_light: bool = True

    @property
    def height(self) -> int:
        return int(self.image.shape[1])

    @property
    def width(self) -> int:
        return int(self.image.shape[2])


@dataclass(frozen=True)
class Batch:
    """A batch as the net and the loss take it."""

    #: What the net sees, encoded: ``(N, C, h, w)`` ("pairs": the config's input_channels) or
    #: ``(N, 4, h, w)`` ("inpaint": RGB with the holes zeroed, then the encoded hole mask).
    inputs: torch.Tensor
    #: What the net should write, encoded, ``(N, 3, h, w)``.
    target: torch.Tensor
    #: Where the loss counts, ``(N, 1, h, w)`` in [0, 1].
    weight: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(self.inputs.to(device), self.target.to(device), self.weight.to(device))


#: How a tool makes a batch from crops when its net sees more than they hold: (generator, images
#: (N, C, h, w), targets (N, 3, h, w), each crop's mask or None) -> the batch (the inpaint's holes).
Cut = Callable[[np.random.Generator, np.ndarray, np.ndarray, Sequence[np.ndarray | None]], Batch]


@dataclass(frozen=True)
class TrainingData:
    """The frames of a run, its validation batch, and the licensed files they came from."""

    mode: str
    dataset: str
    frames: tuple[TrainFrame, ...]
    validation: Batch
    #: True when validation is a held-out frame; False when it is fixed crops of the only frame.
    held_out: bool
    #: Every file read, with its verified hash and licence terms.
    sources: tuple[SourceFile, ...]
    #: What the validation data is, in words, for the model card ("" : said from ``held_out``).
    validation_note: str = ""
    #: "pairs" mode with ``classical_start``: relight-classical's 3x4 affine fitted on every pair
    #: (the held-back one too, as the classical tool given the same keys would be), the net's start.
    classical_affine: np.ndarray | None = None
    #: How batches are made from crops (None: each crop's mask, or all ones, weighs the loss).
    cut: Cut | None = None

    @property
    def validation_kind(self) -> str:
        if self.validation_note:
            return self.validation_note
        return "held-out frame" if self.held_out else "fixed crops of the training frame"

    @property
    def in_channels(self) -> int:
        return int(self.validation.inputs.shape[1])


# -- loading --------------------------------------------------------------------------------------


def input_colour(config: TrainConfig) -> ColourConversion | None:
    """The sources' colour space (``input_colorspace``) as a conversion to scene-linear, or None."""
    if not config.input_colorspace:
        return None
    return ColourConversion.create(colorspace=config.input_colorspace, config=config.ocio_config or None)


def read_planes(item: SourceFile, names: Sequence[str] | None, colour: ColourConversion | None = None) -> np.ndarray:
    """``(C, H, W)`` float32 linear planes of a file: ``names``, or (None) a mask's alpha/only channel.
    Image planes (``names`` given) have their R, G, B decoded to scene-linear by ``colour``;
    integer R, G, B without one are refused (code values, not light)."""
    with verified_path(item) as path:  # the bytes check_for_training hashed, read through one open file
        try:
            frame = read_exr(path)
        except ExrError as exc:
            raise ExrError(f"training source '{item.name}': {exc}".replace(path, str(item.path))) from exc
    if names is not None:
        frame = plate_to_linear(frame, colour, what=f"training source '{item.name}'")
    if names is None:
        channels = list(frame.channels)
        if "A" in frame.channels:
            names = ("A",)
        elif len(channels) == 1:
            names = (channels[0],)
        else:
            raise FrameError(f"mask '{item.name}' has no A channel and {len(channels)} channels {channels}; need one")
    missing = [n for n in names if n not in frame.channels]
    if missing:
        raise FrameError(f"'{item.name}' has no channel(s) {missing}; it has {sorted(frame.channels)}")
    planes = np.ascontiguousarray(frame.stack(list(names)).transpose(2, 0, 1))
    if not np.isfinite(planes).all():
        raise NonFiniteError(f"'{item.name}' holds {int((~np.isfinite(planes)).sum())} NaN or Inf samples")
    return planes


def check_same_size(files: Mapping[str, SourceFile], planes: Mapping[str, np.ndarray]) -> None:
    sizes = {role: tuple(p.shape[1:]) for role, p in planes.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"'{files[r].name}' ({r}) is {s[1]}x{s[0]}" for r, s in sizes.items())
        raise FrameError(f"the files of one training frame differ in size: {listed}")


def load_training_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then load its frames as the run's tool makes its examples
    (:meth:`~plateforge_server.tools.interface.LearnedTool.load_data`)."""
    from plateforge_server.tools.interface import LearnedTool, learned_tool  # the tools import this module

    tool = learned_tool(config.mode)
    if not isinstance(tool, LearnedTool):
        raise UsageError(f"mode {config.mode!r} trains with a loop of its own and reads its data itself")
    return tool.load_data(config, manifest_path)


def licensed_groups(
    config: TrainConfig, manifest_path: StrPath | Manifest, roles: Sequence[str], optional: Sequence[str]
) -> tuple[Manifest, list[Pair]]:
    """The manifest and its licensed files grouped by frame number (each group holding ``roles``,
    and any of ``optional``); licences are checked before any frame is read, and a manifest with
    no such group is refused naming the roles."""
    manifest = load_manifest(manifest_path)
    licensed = check_for_training(manifest)  # refuses unlicensed, forbidden, missing, changed: before any read
    grouped = pairs(licensed, roles=tuple(roles), optional=tuple(optional))
    if not grouped:
        wanted = " and ".join(f"'{r}'" for r in roles)
        raise ManifestError(f"manifest '{manifest.path}' has no files with role {wanted} to train '{config.mode}' on")
    return manifest, grouped


def split_validation(
    config: TrainConfig, frames: Sequence[TrainFrame], *, cut: Cut | None = None
) -> tuple[tuple[TrainFrame, ...], Batch, bool]:
    """(training frames, validation batch, whether it is a held-out frame): with two or more
    frames the last is held out (:func:`validation_window`); with one, fixed crops of it."""
    if len(frames) >= 2:
        return tuple(frames[:-1]), validation_window(config, frames[-1], cut=cut), True
    rng = np.random.default_rng([config.seed, 1])
    crop = min(config.crop, frames[0].height, frames[0].width)
    return tuple(frames), _draw(config, rng, frames, _VALIDATION_CROPS, crop, augment=False, cut=cut), False


def validation_window(config: TrainConfig, frame: TrainFrame, *, cut: Cut | None = None) -> Batch:
    """A centred window of the held-out frame, at most ``validation_size`` a side (its ``cut``,
    e.g. holes, drawn from a generator of its own, so fixed)."""
    height, width = min(frame.height, config.validation_size), min(frame.width, config.validation_size)
    top, left = (frame.height - height) // 2, (frame.width - width) // 2
    rng = np.random.default_rng([config.seed, 2])
    return _assemble(rng, [_window(frame, top, left, height, width)], cut)


def focus_window(config: TrainConfig, frame: TrainFrame, *, cut: Cut | None = None) -> Batch:
    """A window of at most ``validation_size`` a side centred on the frame's ``focus`` (where the
    loss counts: holes, an edge), or its middle when it has none."""
    side_h, side_w = min(frame.height, config.validation_size), min(frame.width, config.validation_size)
    if frame.focus is not None and frame.focus.size:
        ys, xs = np.divmod(frame.focus, frame.width)
        cy, cx = int(np.median(ys)), int(np.median(xs))
    else:
        cy, cx = frame.height // 2, frame.width // 2
    top = min(max(0, cy - side_h // 2), frame.height - side_h)
    left = min(max(0, cx - side_w // 2), frame.width - side_w)
    return _assemble(np.random.default_rng([config.seed, 2]), [_window(frame, top, left, side_h, side_w)], cut)


def join_batches(batches: Sequence[Batch]) -> Batch:
    """One batch of every image of ``batches`` (all of one window size)."""
    return Batch(
        torch.cat([b.inputs for b in batches]),
        torch.cat([b.target for b in batches]),
        torch.cat([b.weight for b in batches]),
    )


# -- crops ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Crop:
    image: np.ndarray
    target: np.ndarray
    mask: np.ndarray | None
    light_channels: int | None = None
    target_light: bool = True


def _window(frame: TrainFrame, top: int, left: int, height: int, width: int) -> _Crop:
    rows, cols = slice(top, top + height), slice(left, left + width)
    mask = frame.mask[rows, cols] if frame.mask is not None else None
    return _Crop(
        frame.image[:, rows, cols], frame.target[:, rows, cols], mask, frame.light_channels, frame.target_light
    )


def _exposed(encoded: np.ndarray, factor: float, light: int | None = None) -> np.ndarray:
    """Encoded planes with their *linear* values multiplied by ``factor`` (see the module doc);
    with ``light`` set, only the first ``light`` planes (the rest are masks, not light)."""
    if light is None or light >= encoded.shape[0]:
        return encode_planes(decode_planes(encoded) * np.float32(factor))
    return np.concatenate([encode_planes(decode_planes(encoded[:light]) * np.float32(factor)), encoded[light:]])


def _augmented(config: TrainConfig, rng: np.random.Generator, crop: _Crop) -> _Crop:
    """Exposure (linear light, input and target alike), then flips and a transpose of square crops."""
    image, target, mask = crop.image, crop.target, crop.mask
    stops = rng.uniform(-config.exposure_jitter, config.exposure_jitter) if config.exposure_jitter > 0 else 0.0
    if stops != 0.0:
        factor = 2.0**stops
        image = _exposed(image, factor, crop.light_channels)
        if crop.target is crop.image:
            target = image
        elif crop.target_light:
            target = _exposed(target, factor)
    if config.flips:
        flip_y, flip_x, swap = (bool(b) for b in rng.integers(0, 2, size=3))
        square = image.shape[1] == image.shape[2]

        def move(planes: np.ndarray) -> np.ndarray:
            if flip_y:
                planes = planes[..., ::-1, :]
            if flip_x:
                planes = planes[..., :, ::-1]
            if swap and square:
                planes = np.swapaxes(planes, -1, -2)
            return planes

        image, target = move(image), move(target)
        mask = move(mask) if mask is not None else None
    return _Crop(image, target, mask, crop.light_channels, crop.target_light)


def _corner(rng: np.random.Generator, frame: TrainFrame, height: int, width: int) -> tuple[int, int]:
    """A crop's top-left corner: centred (with jitter) on a random focus pixel 9 times in 10,
    anywhere otherwise, so most crops hold pixels the loss counts and a few teach the rest."""
    if frame.focus is not None and frame.focus.size and rng.random() < 0.9:
        index = int(frame.focus[int(rng.integers(frame.focus.size))])
        y, x = divmod(index, frame.width)
        y += int(rng.integers(-height // 4, height // 4 + 1))
        x += int(rng.integers(-width // 4, width // 4 + 1))
        return min(max(0, y - height // 2), frame.height - height), min(max(0, x - width // 2), frame.width - width)
    return int(rng.integers(frame.height - height + 1)), int(rng.integers(frame.width - width + 1))


def _draw(
    config: TrainConfig,
    rng: np.random.Generator,
    frames: Sequence[TrainFrame],
    count: int,
    crop: int,
    *,
    augment: bool,
    cut: Cut | None,
) -> Batch:
    """``count`` random ``crop``-sized windows of ``frames`` (augmented if asked), as a batch."""
    crops: list[_Crop] = []
    for _ in range(count):
        frame = frames[int(rng.integers(len(frames)))]
        height, width = min(crop, frame.height), min(crop, frame.width)
        top, left = _corner(rng, frame, height, width)
        window = _window(frame, top, left, height, width)
        crops.append(_augmented(config, rng, window) if augment else window)
    return _assemble(rng, crops, cut)


def _assemble(rng: np.random.Generator, crops: Sequence[_Crop], cut: Cut | None) -> Batch:
    """Stack crops into a :class:`Batch`: each crop's mask (or all ones) weighs the loss, unless
    the tool's ``cut`` makes the batch (drawing from ``rng``)."""
    images = np.stack([c.image for c in crops]).astype(np.float32)
    targets = np.stack([c.target for c in crops]).astype(np.float32)
    if cut is not None:
        return cut(rng, images, targets, [c.mask for c in crops])
    height, width = images.shape[2:]
    masks = [c.mask if c.mask is not None else np.ones((height, width), np.float32) for c in crops]
    weight = np.stack(masks)[:, None].astype(np.float32)
    return Batch(torch.from_numpy(images), torch.from_numpy(targets), torch.from_numpy(weight))


class Sampler:
    """Random augmented batches of a run's training frames, from one seeded generator."""

    def __init__(self, config: TrainConfig, data: TrainingData, *, stream: int = 0) -> None:
        """``stream``: which of the config seed's independent crop streams to draw (a distributed
        run's rank); stream 0 is the single-process run's."""
        self.config = config
        self.data = data
        self.rng = np.random.default_rng([config.seed, 0] if stream == 0 else [config.seed, 0, stream])

    def batch(self) -> Batch:
        """The next ``config.batch`` crops of ``config.crop`` pixels (smaller frames: their size)."""
        crop = min(self.config.crop, min(min(f.height, f.width) for f in self.data.frames))
        return _draw(self.config, self.rng, self.data.frames, self.config.batch, crop, augment=True, cut=self.data.cut)

    def state(self) -> dict[str, Any]:
        """The generator's state, JSON-safe (checkpoints store it)."""
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a state :meth:`state` returned."""
        try:
            self.rng.bit_generator.state = dict(state)  # type: ignore[assignment,unused-ignore]
        except (TypeError, ValueError, KeyError) as exc:
            raise PlateforgeError(f"the saved crop generator state cannot be restored: {exc}") from exc
