"""The fixed contract every tool module fulfils.

A tool is one module that defines:

* ``INFO: ModelInfo`` — its inputs, outputs and parameters, as data;
* ``load(*, device: str) -> object`` — builds whatever state ``run`` needs (weights, caches);
* ``run(state, call: ToolCall) -> dict[str, Frame]`` — produces the declared outputs;
* optionally ``compute(*, device: str, precision: Precision) -> Compute`` — the device and
  arithmetic it runs in on a server with ``device`` when asked for ``precision`` (without it: the
  CPU in float32, as numpy tools do). Every output records it (:func:`recording_compute`), and
  ``--skip-existing`` treats a change as a different job.

The registry finds tools by these names; nothing inherits from anything. ``run`` receives a call
whose inputs are already checked against ``INFO`` (required inputs present, channels present and
full resolution, windows equal, finite unless sanitised) and whose parameters are resolved
(defaults applied, types and ranges checked). ``run`` polls ``call.cancelled`` between steps of
long work and raises :class:`plateforge.errors.CancelledError` when it is set.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from plateforge.calls import Precision
from plateforge.errors import CancelledError, FrameError
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ParamValue
from plateforge.provenance import DEVICE_ATTRIBUTE, PRECISION_ATTRIBUTE, PREFIX

__all__ = [
    "Compute",
    "ToolCall",
    "ToolModule",
    "as_tool_module",
    "cast_like",
    "numpy_compute",
    "passthrough_channels",
    "recording_compute",
]


class Compute(NamedTuple):
    """Where and in what arithmetic a model runs: ``("cuda", "fp16")``, ``("cpu", "fp32")``."""

    device: str
    precision: str


def numpy_compute(*, device: str, precision: Precision) -> Compute:
    """Tools written with numpy run on the CPU in float32 whatever the server's device."""
    return Compute("cpu", "fp32")


@dataclass
class ToolCall:
    """A checked request as a tool sees it."""

    info: ModelInfo
    #: Input name -> frames sorted by frame number (one frame for static inputs).
    inputs: dict[str, list[Frame]]
    params: dict[str, ParamValue]
    #: The frame number to produce (the plate's frame number when only one frame is given).
    target_frame: int | None
    cancelled: threading.Event = field(default_factory=threading.Event)
    #: provenance.pixels_digest of frames as received, by (input name, frame number), where the
    #: transport already computed it.
    digests: dict[tuple[str, int | None], str] = field(default_factory=dict)
    #: The arithmetic asked for; a tool that can run in fp16 honours "fp32" (see ToolModule.compute).
    precision: Precision = "auto"

    def frame(self, name: str, number: int | None = None) -> Frame:
        """Input ``name`` at ``number`` (default: the target), or its only frame if static."""
        frames = self.inputs[name]
        if len(frames) == 1:
            return frames[0]
        want = self.target_frame if number is None else number
        for f in frames:
            if f.frame_number == want:
                return f
        raise FrameError(f"input {name!r} has no frame {want}; it has {[f.frame_number for f in frames]}")

    def has(self, name: str) -> bool:
        return name in self.inputs

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise CancelledError(f"model {self.info.name!r}: cancelled by the caller")


@dataclass(frozen=True)
class ToolModule:
    """A tool module's contract, gathered from its module-level names."""

    info: ModelInfo
    load: Callable[..., Any]
    run: Callable[[Any, ToolCall], dict[str, Frame]]
    compute: Callable[..., Compute] = numpy_compute


def as_tool_module(module: ModuleType) -> ToolModule:
    """Check ``module`` defines INFO, load and run, and wrap them."""
    missing = [n for n in ("INFO", "load", "run") if not hasattr(module, n)]
    if missing:
        raise TypeError(f"tool module {module.__name__} lacks {missing}")
    if not isinstance(module.INFO, ModelInfo):
        raise TypeError(f"tool module {module.__name__}: INFO must be a plateforge.models.ModelInfo")
    compute = getattr(module, "compute", numpy_compute)
    return ToolModule(info=module.INFO, load=module.load, run=module.run, compute=compute)


def recording_compute(tool: ToolModule, *, device: str) -> ToolModule:
    """``tool`` on a server with ``device``: its ModelInfo says the device and precision it runs
    in when asked for "auto", and every output of its ``run`` records the device and precision of
    that call in its provenance (``plateforge/device``, ``plateforge/precision``), so a farm can
    tell (and ``--skip-existing`` redo) frames made in other arithmetic."""
    auto = tool.compute(device=device, precision="auto")
    info = dataclasses.replace(
        tool.info,
        attributes={**tool.info.attributes, DEVICE_ATTRIBUTE: auto.device, PRECISION_ATTRIBUTE: auto.precision},
    )
    run = tool.run

    def recorded(state: Any, call: ToolCall) -> dict[str, Frame]:
        used = tool.compute(device=device, precision=call.precision)
        stamp = {PREFIX + DEVICE_ATTRIBUTE: used.device, PREFIX + PRECISION_ATTRIBUTE: used.precision}
        return {name: out.replace(attributes={**out.attributes, **stamp}) for name, out in run(state, call).items()}

    return dataclasses.replace(tool, info=info, run=recorded)


def passthrough_channels(source: Frame, produced: dict[str, Any]) -> Frame:
    """``source`` with ``produced`` channels replaced or added; every other channel untouched.

    Tools build their primary output with this so channels they do not use (Z, motion vectors,
    AOVs, subsampled chroma) pass through bit for bit.
    """
    channels = dict(source.channels)
    channels.update(produced)
    sampling = {k: v for k, v in source.sampling.items() if k not in produced}
    return source.replace(channels=channels, sampling=sampling)


def cast_like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float ``values`` in ``like``'s pixel type: half clipped to its finite range (a value past
    65504 would become Inf), unsigned integers rounded and clipped, float32 as is."""
    if like.dtype == np.float16:
        big = float(np.finfo(np.float16).max)
        half: np.ndarray = np.clip(values, -big, big).astype(np.float16)
        return half
    if like.dtype.kind == "u":
        info = np.iinfo(like.dtype)
        integers: np.ndarray = np.clip(np.rint(values), info.min, info.max).astype(like.dtype)
        return integers
    cast: np.ndarray = values.astype(like.dtype)
    return cast
