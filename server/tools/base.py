"""The fixed contract every tool module fulfils.

A tool is one module that defines:

* ``INFO: ModelInfo`` — its inputs, outputs and parameters, as data;
* ``load(*, device: str) -> object`` — builds whatever state ``run`` needs (weights, caches);
* ``run(state, call: ToolCall) -> dict[str, Frame]`` — produces the declared outputs.

The registry finds tools by these names; nothing inherits from anything. ``run`` receives a call
whose inputs are already checked against ``INFO`` (required inputs present, channels present and
full resolution, windows equal, finite unless sanitised) and whose parameters are resolved
(defaults applied, types and ranges checked). ``run`` polls ``call.cancelled`` between steps of
long work and raises :class:`plateforge.errors.CancelledError` when it is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from plateforge.errors import CancelledError, FrameError
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ParamValue

__all__ = ["ToolCall", "ToolModule", "as_tool_module", "cast_like", "passthrough_channels"]


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


def as_tool_module(module: ModuleType) -> ToolModule:
    """Check ``module`` defines INFO, load and run, and wrap them."""
    missing = [n for n in ("INFO", "load", "run") if not hasattr(module, n)]
    if missing:
        raise TypeError(f"tool module {module.__name__} lacks {missing}")
    if not isinstance(module.INFO, ModelInfo):
        raise TypeError(f"tool module {module.__name__}: INFO must be a plateforge.models.ModelInfo")
    return ToolModule(info=module.INFO, load=module.load, run=module.run)


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
