"""What a training run is: one frozen dataclass, every default commented, saved with every checkpoint.

What differs between the modes' tools (the card's tool, the loss's default MSE weight, the net,
the examples) is asked of the mode's learned tool (:mod:`plateforge_server.tools.interface`).

:class:`TrainConfig` round-trips through a JSON-safe dict (:meth:`TrainConfig.to_dict`, schema
``plateforge.trainconfig/1``). Checkpoints and model cards store that dict, so a run can be
resumed, or its model explained, without the script that started it.

The modes:

* ``"pairs"`` (CopyCat-style): input frames -> target frames, paired by frame number from the
  manifest's ``input`` and ``target`` roles; an optional ``mask`` role restricts the loss to the
  mask (the net still sees and writes the whole image); see
  :mod:`plateforge_server.tools.pairs.examples`.
* ``"inpaint"`` (self-supervised paint-out): the ``plate`` role, plus an optional ``mask`` role
  (the shot's own roto); random holes are cut where the roto is clear and the net learns to fill
  them, see :mod:`plateforge_server.tools.inpaint.examples`.
* ``"cleanup"``: see :mod:`plateforge_server.tools.cleanup.examples`.
* ``"matte"`` (few-shot matting): ``plate`` and ``clean_plate`` frames plus ``matte`` keyframes
  (at least ``min_keyframes``); the net corrects the classical difference key, see
  :mod:`plateforge_server.tools.matte.examples`.
* ``"lora"``: a LoRA adapter on a licensed diffusers inpainting pipeline (``base_model``), trained
  on the manifest's licensed stills; its own loop, see :mod:`plateforge_server.generative.lora`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from plateforge.errors import UsageError
from plateforge_server.nets.unet import SIZES
from plateforge_server.training.defaults import CLEANUP_MSE_WEIGHT, MATTE_LOSS_SETTINGS, with_tool_defaults

__all__ = [
    "BUDGET_STEPS",
    "CLEANUP_MSE_WEIGHT",
    "KNOWN_SCHEMAS",
    "MATTE_LOSS_SETTINGS",
    "SCHEMA",
    "TOOL_FIELD",
    "AmpMode",
    "TrainConfig",
    "TrainMode",
    "with_mode_defaults",
]

TrainMode = Literal["pairs", "inpaint", "cleanup", "matte", "lora"]
AmpMode = Literal["auto", "on", "off"]

#: The schema :meth:`TrainConfig.to_dict` writes.
SCHEMA: Final = "plateforge.trainconfig/1"
#: Schemas :meth:`TrainConfig.from_dict` reads; anything else is refused with this list.
KNOWN_SCHEMAS: Final = (SCHEMA,)
#: The steps of a run given a ``minutes`` budget and no steps: the most a job may take
#: (``plateforge_server.jobs._limits.CONFIG_BOUNDS``), so the budget is what ends it.
BUDGET_STEPS: Final = 1_000_000
#: The metadata key marking a field only some tools read (those whose learned tool lists it in
#: ``config_fields``); its value names a non-default value in the error a run of another tool gets.
TOOL_FIELD: Final = "tool_field"


def with_mode_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` TrainConfig fields plus their tool's own defaults for the fields they leave out
    (:func:`plateforge_server.training.defaults.with_tool_defaults`). Every way a run's config is
    assembled (training jobs, ``python -m plateforge_server.training.run``, the quality bench)
    goes through here, so a tool trains alike whichever starts it. A run given a ``minutes``
    budget and no ``steps`` runs until the budget ends it (:data:`BUDGET_STEPS`)."""
    values = dict(given)
    if values.get("minutes") is not None and "steps" not in values:
        values["steps"] = BUDGET_STEPS
    return with_tool_defaults(values)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (data, net, optimiser, schedule, loss, bookkeeping)."""

    # -- what is learned ------------------------------------------------------------------------
    mode: TrainMode = "pairs"  # "pairs": input -> target frames; "inpaint": fill random holes in the plate
    tool: str = "look"  # the card's tool in "pairs" mode ("look", "relight" ...); "matte" mode: "matte"; else "cleanup"
    # "pairs" mode: the input channels the net reads, R, G, B first (its output is residual on them);
    # more (e.g. normal/position AOVs "N.x", "P.x" ...) become extra net inputs the served model asks for.
    input_channels: tuple[str, ...] = field(
        default=("R", "G", "B"), metadata={TOOL_FIELD: "input_channels other than R, G, B are"}
    )
    # The sources' OpenColorIO colour space when they are not scene-linear (sRGB, a log or camera
    # space): their R, G, B are decoded to the config's scene_linear on read ("" : linear already).
    input_colorspace: str = ""
    ocio_config: str = ""  # OCIO built-in (ocio://...) for input_colorspace ("": the server's $OCIO, else ACES studio)
    # "pairs" mode: start as relight-classical's 3x4 affine fitted on the run's key pairs (the net
    # corrects it: plateforge_server.tools.relight.affine_start) instead of as the identity, so step 0 is the
    # classical transform and model selection falls back to it when no checkpoint beats it.
    classical_start: bool = field(default=False, metadata={TOOL_FIELD: "classical_start is"})
    name: str = ""  # the exported model's name; "" uses the dataset's name from the manifest
    # A plateforge model folder whose weights start the run (CopyCat's Initial Weights): same tool,
    # architecture and net config (plateforge_server.training.initial); "" starts from a fresh net.
    init: str = ""
    size: str = "small"  # UNet preset (plateforge_server.nets.unet.SIZES): "small", "medium" or "large"
    # "pairs" mode: blur-pool down and bilinear up (UNetConfig.equivariant): the net's answer moves
    # with the picture under a camera move instead of swimming against it (temporal stability).
    equivariant: bool = field(default=False, metadata={TOOL_FIELD: "equivariant is"})
    # "pairs" mode: net corrections smaller than this (encoded units) are dropped, so the output
    # falls back to its start (the plate, or with classical_start the fitted affine) where the net
    # has nothing sure to add (UNetConfig.residual_dead_zone). 0: off.
    dead_zone: float = field(default=0.0, metadata={TOOL_FIELD: "dead_zone is"})
    # -- optimisation ---------------------------------------------------------------------------
    steps: int = 2000  # optimiser steps in the whole run (the schedule spans them)
    # Wall-clock budget in minutes (None: none): training stops after the step that reaches it,
    # then model selection and export run as usual. Counted from the start of the run (data
    # loading included) over every resume; the cosine follows the budget too (see lr_at).
    minutes: float | None = None
    batch: int = 4  # crops per step
    crop: int = 128  # crop side in pixels (frames smaller than this are used whole)
    lr: float = 2e-4  # peak AdamW learning rate, reached at the end of the warm-up
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    warmup: int = 100  # steps of linear warm-up from 0 to lr ...
    min_lr_ratio: float = 0.05  # ... then a cosine down to lr * this at the last step
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 turns clipping off
    # -- loss -----------------------------------------------------------------------------------
    ssim_weight: float = 0.2  # loss = L1 + ssim_weight * (1 - SSIM), both on encoded values
    # ... + mse_weight * MSE. Squared error is what PSNR measures: with L1 alone the learned cleanup
    # only tied the classical one in PSNR. None: the mode's tool's default_mse_weight
    # (CLEANUP_MSE_WEIGHT in "cleanup" mode, 0 otherwise).
    mse_weight: float | None = None
    # ... its per-sample weight (1 + target's linear value) ** mse_gain: 0 weighs errors as the
    # encoded space does, 2 as scene-linear squared error (highlights; see server/plateforge_server/training/loss.py).
    mse_gain: float = 0.0
    # ... + temporal_weight * shift consistency: the net's answer on its inputs moved by a few pixels
    # against its answer moved (plateforge_server.training.temporal): temporal stability under a camera
    # move, which a stride-2 net lacks. 0: off.
    temporal_weight: float = 0.0
    # -- augmentation ---------------------------------------------------------------------------
    exposure_jitter: float = 1.0  # +- stops: input and target both scaled by 2**u, u ~ U(-j, j), in linear light
    flips: bool = True  # random horizontal and vertical flips (and transposes of square crops)
    # -- "cleanup" mode -------------------------------------------------------------------------
    holes_per_frame: int = 4  # hole patterns cut (and classically filled) per frame before training
    temporal_radius: int = 2  # neighbouring frames each side the classical guide aligns and fills from
    # Loss weight of hole pixels no neighbour shows, relative to those one does (>= 1): nearly all
    # of the classical fill's error is there (spatial inpainting), so that is where the net must learn.
    unseen_weight: float = 4.0
    # Fraction of hole patterns that are thin markers stuck on the set (tape crosses, strips),
    # cut world-locked in every neighbour so only spatial inpainting fills them; the rest are
    # rig-sized boxes and strokes.
    marker_holes: float = 0.5
    soft_holes: bool = True  # holes get a soft roto edge (grown 0-3 px, falling over 1-3 px), as real rotos have
    # Fraction of hole patterns that are the shot's own roto moved to where it is clear (its shape,
    # thickness, orientation and motion across the neighbours; plateforge_server.tools.cleanup.examples,
    # step 3): the case the net meets at inference. The rest are the generic shapes above. A shot
    # without a roto uses the generic shapes only.
    roto_holes: float = 0.75
    # -- "matte" mode ---------------------------------------------------------------------------
    min_keyframes: int = 2  # keyframe mattes (with an edge) a run needs at least
    # -- "lora" mode (plateforge_server.generative.lora) ------------------------------------------
    base_model: str = ""  # the licensed diffusers inpainting pipeline folder the adapter is trained on
    lora_rank: int = 4  # adapter rank; its alpha is the same (scale 1)
    prompt: str = ""  # the caption every still is trained with
    # -- bookkeeping ----------------------------------------------------------------------------
    checkpoint_every: int = 500  # steps between checkpoints (one is also written on cancel and at the end)
    keep_checkpoints: int = 2  # checkpoints kept on disk, newest first
    preview_every: int = 100  # steps between preview.png / loss.png updates
    tensorboard: bool = False  # also write TensorBoard event files (train/tensorboard/) at each preview
    validation_every: int = 100  # steps between validation PSNR measurements
    validation_size: int = 256  # validation uses at most this many pixels a side of the held-out frame
    seed: int = 0  # seeds the net's init, the crops, the augmentation and the holes
    device: str = "auto"  # "auto" (first CUDA device, else CPU), "cpu", "cuda", "cuda:N"
    amp: AmpMode = "auto"  # mixed precision: "auto" is on for CUDA only; "on" on CPU is refused

    def __post_init__(self) -> None:
        channels = self.input_channels
        if isinstance(channels, str):  # a --param value: "R,G,B,N.x,N.y,N.z"
            channels = [c.strip() for c in channels.split(",")]
        if isinstance(channels, list):  # from JSON
            object.__setattr__(self, "input_channels", tuple(channels))
        problems: list[str] = []
        if self.mode not in get_args(TrainMode):
            problems.append(f"mode must be one of {list(get_args(TrainMode))}, got {self.mode!r}")
        if self.amp not in get_args(AmpMode):
            problems.append(f"amp must be one of {list(get_args(AmpMode))}, got {self.amp!r}")
        if self.size not in SIZES:
            problems.append(f"size must be one of {sorted(SIZES)}, got {self.size!r}")
        if isinstance(self.ocio_config, str) and self.ocio_config and not self.ocio_config.startswith("ocio://"):
            # A path here would have the server open any file a caller names, outside --data-root.
            problems.append(
                f"ocio_config must be an OpenColorIO built-in (ocio://...) or empty for the server's $OCIO, "
                f"got {self.ocio_config[:200]!r}: a training request does not name files for the server to read"
            )
        if not isinstance(self.tool, str) or not self.tool.strip():
            problems.append(f"tool must be a non-empty name, got {self.tool!r}")
        positive = (
            "steps",
            "batch",
            "checkpoint_every",
            "keep_checkpoints",
            "preview_every",
            "validation_every",
            "holes_per_frame",
            "min_keyframes",
            "lora_rank",
        )
        for key in positive:
            value = getattr(self, key)
            if type(value) is not int or value < 1:
                problems.append(f"{key} must be an integer >= 1, got {value!r}")
        for key, low in (("crop", 16), ("validation_size", 16), ("warmup", 0), ("seed", 0), ("temporal_radius", 0)):
            value = getattr(self, key)
            if type(value) is not int or value < low:
                problems.append(f"{key} must be an integer >= {low}, got {value!r}")
        for key in (
            "lr",
            "weight_decay",
            "min_lr_ratio",
            "grad_clip",
            "ssim_weight",
            "exposure_jitter",
            "mse_gain",
            "temporal_weight",
            "unseen_weight",
            "marker_holes",
            "roto_holes",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                problems.append(f"{key} must be a finite number >= 0, got {value!r}")
        if isinstance(self.lr, (int, float)) and self.lr == 0:
            problems.append("lr must be above 0")
        if isinstance(self.unseen_weight, (int, float)) and self.unseen_weight < 1:
            problems.append(f"unseen_weight must be at least 1, got {self.unseen_weight!r}")
        budget = self.minutes
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0
        ):
            problems.append(f"minutes must be a finite number above 0 or null, got {budget!r}")
        mse = self.mse_weight
        if mse is not None and (
            isinstance(mse, bool) or not isinstance(mse, (int, float)) or not math.isfinite(mse) or mse < 0
        ):
            problems.append(f"mse_weight must be a finite number >= 0 or null, got {mse!r}")
        if isinstance(self.marker_holes, (int, float)) and self.marker_holes > 1:
            problems.append(f"marker_holes is a fraction, at most 1, got {self.marker_holes!r}")
        if isinstance(self.roto_holes, (int, float)) and self.roto_holes > 1:
            problems.append(f"roto_holes is a fraction, at most 1, got {self.roto_holes!r}")
        if isinstance(self.min_lr_ratio, (int, float)) and self.min_lr_ratio > 1:
            problems.append(f"min_lr_ratio must be at most 1, got {self.min_lr_ratio!r}")
        problems.extend(_channel_problems(self))
        if not isinstance(self.soft_holes, bool):
            problems.append(f"soft_holes must be true or false, got {self.soft_holes!r}")
        zone = self.dead_zone
        if isinstance(zone, bool) or not isinstance(zone, (int, float)) or not 0.0 <= zone < 1.0:
            problems.append(f"dead_zone must be a number from 0 up to 1 (encoded units), got {zone!r}")
        if not isinstance(self.equivariant, bool):
            problems.append(f"equivariant must be true or false, got {self.equivariant!r}")
        if not isinstance(self.classical_start, bool):
            problems.append(f"classical_start must be true or false, got {self.classical_start!r}")
        if not isinstance(self.init, str):
            problems.append(f"init must be a model folder path or empty, got {self.init!r}")
        if not isinstance(self.flips, bool):
            problems.append(f"flips must be true or false, got {self.flips!r}")
        if self.mode in get_args(TrainMode):
            problems.extend(_tool_problems(self))
        if problems:
            raise UsageError("invalid training config: " + "; ".join(problems))

    @property
    def model_tool(self) -> str:
        """The tool the exported model serves, as the mode's learned tool says (``tool`` for
        pairs, ``"matte"`` for matte, ``"generative-fill"`` for lora, ``"cleanup"`` otherwise)."""
        from plateforge_server.tools.interface import learned_tool  # the tools import this module

        return learned_tool(self.mode).served_tool(self)

    @property
    def loss_mse_weight(self) -> float:
        """The MSE term's weight this run uses (``mse_weight``, or its tool's default when None)."""
        from plateforge_server.tools.interface import LearnedTool, learned_tool

        if self.mse_weight is not None:
            return float(self.mse_weight)
        tool = learned_tool(self.mode)
        return float(tool.default_mse_weight) if isinstance(tool, LearnedTool) else 0.0

    def lr_at(self, step: int, *, seconds: float | None = None) -> float:
        """Learning rate for optimiser step ``step`` (1-based): linear warm-up, then cosine to the floor.

        With a ``minutes`` budget and ``seconds`` trained so far, the cosine follows whichever is
        further along, the steps or the budget: a run the budget ends still ends near the floor."""
        if step <= self.warmup:
            return self.lr * step / (self.warmup + 1)
        span = max(1, self.steps - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        if self.minutes is not None and seconds is not None:
            progress = max(progress, min(1.0, seconds / (self.minutes * 60.0)))
        floor = self.lr * self.min_lr_ratio
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    # -- saving ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``schema``, JSON-safe; :meth:`from_dict` rebuilds the config."""
        data: dict[str, Any] = {"schema": SCHEMA}
        data.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        data["input_channels"] = list(self.input_channels)  # as JSON reads it back, so saved == to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The config :meth:`to_dict` wrote. Unknown schemas are refused with the known list;
        unknown fields are refused; missing fields take their defaults."""
        schema = data.get("schema")
        if schema not in KNOWN_SCHEMAS:
            raise UsageError(
                f"training config schema {schema!r} is not one this code reads; known schemas: {list(KNOWN_SCHEMAS)}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"schema"})
        if unknown:
            raise UsageError(f"training config: unknown field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**{key: value for key, value in data.items() if key in names})


def _channel_problems(config: TrainConfig) -> list[str]:
    """What is wrong with ``input_channels``: R, G, B first, distinct names (which tools read
    extras: :func:`_tool_problems`)."""
    channels = config.input_channels
    if not isinstance(channels, tuple) or not all(isinstance(c, str) and c.strip() for c in channels):
        return [f"input_channels must be a list of channel names, got {channels!r}"]
    problems = []
    if channels[:3] != ("R", "G", "B"):
        problems.append(
            f"input_channels must start with R, G, B (the net's output is residual on them), got {list(channels)}"
        )
    if len(set(channels)) != len(channels):
        problems.append(f"input_channels names a channel twice: {list(channels)}")
    return problems


def _tool_problems(config: TrainConfig) -> list[str]:
    """What the mode's learned tool finds wrong with its own fields, and each tool field
    (:data:`TOOL_FIELD`) set away from its default for a tool that does not read it."""
    from plateforge_server.tools import LEARNED  # the tools import this module
    from plateforge_server.tools.interface import learned_tool

    tool = learned_tool(config.mode)
    problems = list(tool.config_problems(config))
    for spec in dataclasses.fields(config):
        phrase = spec.metadata.get(TOOL_FIELD)
        if phrase is None or spec.name in tool.config_fields or getattr(config, spec.name) == spec.default:
            continue
        readers = " or ".join(f'"{mode}"' for mode in LEARNED if spec.name in learned_tool(mode).config_fields)
        problems.append(f"{phrase} for {readers} mode only; mode is {config.mode!r}")
    return problems
