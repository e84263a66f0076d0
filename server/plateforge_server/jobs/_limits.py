"""The bounds of a training job: every TrainConfig field, the request around it, the queue, the listing.

A job is checked against these before it exists, so nothing a caller sends can become a job
record that the server cannot list, read back or run within its memory. One table,
:data:`CONFIG_BOUNDS`, gives every :class:`~plateforge_server.training.TrainConfig` field its type
and range; :data:`LIMITS` gives the request, queue and listing limits. Both are the documentation
too: ``docs/training-limits.md`` is :func:`limits_markdown` (a test proves it current).

* :func:`check_override` checks one value a caller sent (``config_json`` or ``params``) against its
  field's bound, before it reaches TrainConfig: a whole number for an integer field (a float such
  as ``2.0`` from a ``ParamValue`` is accepted), a finite number in range, text of bounded length.
* :func:`check_config` checks a whole config (the one built from defaults and overrides, or one
  read back from a job record), every field and the memory one step needs (``batch * crop**2``).
* Every refusal is a :class:`~plateforge.errors.UsageError` (INVALID_ARGUMENT) naming the field,
  its bound and, cut to a few dozen characters, what was sent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

from plateforge.errors import UsageError
from plateforge_server.nets.unet import SIZES
from plateforge_server.roots import check_model_name
from plateforge_server.training.config import AmpMode, TrainConfig, TrainMode

__all__ = [
    "CONFIG_BOUNDS",
    "LIMITS",
    "Bound",
    "Limits",
    "check_config",
    "check_override",
    "limits_markdown",
    "shown",
]

Kind = Literal["int", "number", "bool", "choice", "text", "names"]

#: Characters of a caller's value an error message repeats; the rest is counted, not echoed.
SHOWN_CHARS: Final = 60


def shown(value: object) -> str:
    """``repr(value)`` cut to :data:`SHOWN_CHARS` characters, saying how long it was."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… ({len(text)} characters)"


@dataclass(frozen=True)
class Bound:
    """What one field may hold. ``low``/``high`` are inclusive; ``size`` is the longest text (or
    the most names, for ``names``); ``item_size`` the longest name; ``why`` says why the bound."""

    kind: Kind
    low: float | None = None
    high: float | None = None
    size: int = 0
    item_size: int = 0
    choices: tuple[str, ...] = ()
    nullable: bool = False
    why: str = ""

    def describe(self) -> str:
        """The bound in words, as error messages and the docs give it."""
        null = " or null" if self.nullable else ""
        if self.kind == "int":
            return f"a whole number from {_num(self.low)} to {_num(self.high)}{null}"
        if self.kind == "number":
            return f"a finite number from {_num(self.low)} to {_num(self.high)}{null}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "text":
            return f"text of at most {self.size} characters, no control characters"
        return f"a list of at most {self.size} names of at most {self.item_size} characters"

    def check(self, name: str, value: object) -> object:
        """``value`` in the field's type (an integral float becomes an int); UsageError otherwise."""
        if value is None and self.nullable:
            return None
        problem = f"training config: {name} must be {self.describe()}, got {shown(value)}"
        if self.kind in ("int", "number"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(problem)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(problem)
            assert self.low is not None and self.high is not None
            if not self.low <= value <= self.high:
                raise UsageError(problem)
            if self.kind == "int" and isinstance(value, float):
                if not value.is_integer():
                    raise UsageError(f"training config: {name} must be a whole number, got {shown(value)}")
                return int(value)
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise UsageError(problem)
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise UsageError(problem)
            return value
        if self.kind == "text":
            if not isinstance(value, str) or len(value) > self.size or _has_control(value):
                raise UsageError(problem)
            return value
        names = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
        if (
            not isinstance(names, (list, tuple))
            or len(names) > self.size
            or not all(isinstance(n, str) and len(n) <= self.item_size and not _has_control(n) for n in names)
        ):
            raise UsageError(problem)
        return value


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{int(value):_}" if float(value).is_integer() and abs(value) >= 1 else f"{value:g}"


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


_MILLION: Final = 1_000_000

#: Every TrainConfig field: its type and bounds (see :class:`Bound`). A test proves it names
#: exactly the fields of TrainConfig, so a new field cannot go unchecked.
CONFIG_BOUNDS: Final[Mapping[str, Bound]] = {
    "mode": Bound("choice", choices=get_args(TrainMode)),
    "tool": Bound("text", size=64, why="a tool's name"),
    "input_channels": Bound("names", size=32, item_size=64, why="EXR channel names; each is a net input"),
    "input_colorspace": Bound("text", size=256, why="an OpenColorIO colour space name"),
    "ocio_config": Bound("text", size=4096, why="an OpenColorIO config: a file path or ocio:// name"),
    "classical_start": Bound("bool"),
    "name": Bound("text", size=128, why="becomes a folder: a plain name, as model_name"),
    "init": Bound("text", size=4096, why="a model folder path (empty: a fresh net)"),
    "size": Bound("choice", choices=tuple(sorted(SIZES))),
    "equivariant": Bound("bool"),
    "dead_zone": Bound("number", 0, 0.99, why="encoded units; 0: off"),
    "steps": Bound("int", 1, _MILLION, why="a job must end; progress is an int64 on the wire"),
    "minutes": Bound(
        "number", 0.01, 7 * 24 * 60, nullable=True, why="wall-clock training budget; null: none (a week at most)"
    ),
    "batch": Bound("int", 1, 64, why="crops held in memory per step (with crop: see max_step_pixels)"),
    "crop": Bound("int", 16, 1024, why="pixels a side of one crop"),
    "lr": Bound("number", 1e-8, 1.0),
    "weight_decay": Bound("number", 0, 1.0),
    "warmup": Bound("int", 0, _MILLION),
    "min_lr_ratio": Bound("number", 0, 1.0),
    "grad_clip": Bound("number", 0, 1e4, why="0 turns clipping off"),
    "ssim_weight": Bound("number", 0, 1e3),
    "mse_weight": Bound("number", 0, 1e3, nullable=True, why="null: the mode's default"),
    "mse_gain": Bound("number", 0, 4.0, why="(1 + linear) ** gain weights each squared error"),
    "temporal_weight": Bound("number", 0, 1e3, why="weight of the shift-consistency term; 0: off"),
    "exposure_jitter": Bound("number", 0, 8.0, why="stops either way"),
    "flips": Bound("bool"),
    "holes_per_frame": Bound("int", 1, 64, why="hole patterns cut and classically filled per frame, up front"),
    "temporal_radius": Bound("int", 0, 8, why="neighbour frames aligned per sample, each side"),
    "unseen_weight": Bound("number", 1.0, 1e3),
    "marker_holes": Bound("number", 0, 1.0, why="a fraction"),
    "soft_holes": Bound("bool"),
    "roto_holes": Bound("number", 0, 1.0, why="a fraction"),
    "min_keyframes": Bound("int", 1, 10_000),
    "base_model": Bound("text", size=4096, why="a folder path"),
    "lora_rank": Bound("int", 1, 256),
    "prompt": Bound("text", size=2000, why="one caption"),
    "checkpoint_every": Bound("int", 1, _MILLION),
    "keep_checkpoints": Bound("int", 1, 100, why="checkpoints kept on disk"),
    "preview_every": Bound("int", 1, _MILLION),
    "tensorboard": Bound("bool", why="also TensorBoard event files, in the job's train/tensorboard/"),
    "validation_every": Bound("int", 1, _MILLION),
    "validation_size": Bound("int", 16, 4096, why="pixels a side of the validation window"),
    "seed": Bound("int", 0, 2**32 - 1, why="numpy and torch generators take it"),
    "device": Bound("text", size=32, why="set by the server, never by a caller"),
    "amp": Bound("choice", choices=get_args(AmpMode)),
}


@dataclass(frozen=True)
class Limits:
    """What a StartTraining request, the queue and ListJobs may hold (the server's defaults)."""

    #: Pixels of one optimiser step, ``batch * crop**2``: what the crops, the net's activations
    #: and their gradients scale with (4 Mpx: 64 crops of 256, 4 of 1024; the default is 64 kpx).
    max_step_pixels: int = 4 * 1024 * 1024
    #: Bytes of ``config_json`` (a config is a few hundred).
    max_config_json_bytes: int = 64 * 1024
    #: Characters of the ``dataset`` path and of ``tool``.
    max_dataset_chars: int = 4096
    max_tool_chars: int = 64
    #: Bytes of a dataset manifest, and the files it may list.
    max_manifest_bytes: int = 8 * 1024 * 1024
    max_dataset_files: int = 100_000
    #: Jobs QUEUED or RUNNING at once; StartTraining and ResumeJob beyond it are RESOURCE_EXHAUSTED.
    max_queued: int = 32
    #: ListJobs page: the size when the request gives none, and the most a page holds.
    default_page_size: int = 100
    max_page_size: int = 1000
    #: Bytes of a job record on disk; a larger one is listed as broken, never read.
    max_record_bytes: int = 1024 * 1024
    #: Characters of a job's error message kept in its record (the rest is cut, saying so).
    max_error_chars: int = 4000


#: The server's limits.
LIMITS: Final = Limits()


def check_override(name: str, value: object) -> object:
    """``value`` for TrainConfig field ``name`` if within its bound (see :data:`CONFIG_BOUNDS`)."""
    bound = CONFIG_BOUNDS.get(name)
    if bound is None:
        raise UsageError(f"training config: unknown field {shown(name)}; known fields: {sorted(CONFIG_BOUNDS)}")
    return bound.check(name, value)


def check_config(config: TrainConfig, *, limits: Limits = LIMITS) -> TrainConfig:
    """``config`` if every field is within its bound and one step fits ``max_step_pixels``."""
    for field in dataclasses.fields(config):
        check_override(field.name, getattr(config, field.name))
    if config.name:
        check_model_name(config.name, "training config: name")
    pixels = config.batch * config.crop * config.crop
    if pixels > limits.max_step_pixels:
        raise UsageError(
            f"training config: batch * crop**2 must be at most {limits.max_step_pixels:_} pixels a step, got "
            f"{config.batch} * {config.crop}**2 = {pixels:_}; lower batch or crop"
        )
    return config


def limits_markdown(limits: Limits = LIMITS) -> str:
    """The bounds as the Markdown tables of ``docs/training-limits.md``."""
    lines = ["| field | bound | why |", "|---|---|---|"]
    for name, bound in CONFIG_BOUNDS.items():
        lines.append(f"| `{name}` | {bound.describe()} | {bound.why} |")
    lines += ["", "| limit | value | what |", "|---|---|---|"]
    for field in dataclasses.fields(limits):
        lines.append(f"| `{field.name}` | {getattr(limits, field.name):_} | {_LIMIT_DOCS[field.name]} |")
    return "\n".join(lines) + "\n"


_LIMIT_DOCS: Final[Mapping[str, str]] = {
    "max_step_pixels": "`batch * crop**2`: the pixels of one optimiser step, what memory scales with",
    "max_config_json_bytes": "bytes of `config_json`",
    "max_dataset_chars": "characters of the `dataset` path",
    "max_tool_chars": "characters of `tool`",
    "max_manifest_bytes": "bytes of the dataset manifest",
    "max_dataset_files": "files the manifest may list",
    "max_queued": "jobs QUEUED or RUNNING at once; more is RESOURCE_EXHAUSTED",
    "default_page_size": "ListJobs page size when the request gives 0",
    "max_page_size": "the most jobs one ListJobs page holds",
    "max_record_bytes": "bytes of a `job.json`; a larger one is listed as broken",
    "max_error_chars": "characters of a job's error kept in its record",
}
