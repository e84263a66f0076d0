"""Checks a request must pass before a tool sees it.

Every tool relies on these, so no tool re-checks: the inputs are the declared ones, required
channels are present and full resolution, every frame shares the plate's windows, nothing is
larger than the server's limits, and NaN/Inf are refused (naming frame and channel) unless the
caller asked for sanitising.
"""

from __future__ import annotations

import threading

from plateforge.calls import ProcessCall
from plateforge.errors import FrameError, FrameTooLargeError
from plateforge.frames import Frame
from plateforge.models import ModelInfo, resolve_params
from plateforge_server.tools.base import ToolCall

__all__ = ["DEFAULT_MAX_FRAME_PIXELS", "DEFAULT_MAX_REQUEST_BYTES", "check_call", "check_frame_size"]

#: 16K square: larger than any plate a production shoots, small enough to refuse nonsense.
DEFAULT_MAX_FRAME_PIXELS = 16384 * 16384
#: All the pixel bytes one streamed request may announce (every input, neighbours included).
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024**3


def check_frame_size(what: str, width: int, height: int, max_frame_pixels: int) -> None:
    """Refuse a frame over the server's pixel limit, naming it."""
    if width * height > max_frame_pixels:
        raise FrameTooLargeError(
            f"{what} is {width}x{height} = {width * height} pixels; this server accepts at most {max_frame_pixels}"
        )


def check_call(
    info: ModelInfo,
    call: ProcessCall,
    *,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    cancelled: threading.Event | None = None,
) -> ToolCall:
    """``call`` checked against ``info``, as the ToolCall the tool will run."""
    params = resolve_params(info, call.params)
    declared = {spec.name: spec for spec in info.inputs}
    unknown = sorted(set(call.inputs) - set(declared))
    if unknown:
        raise FrameError(f"model {info.name!r} takes no input(s) {unknown}; it takes {sorted(declared)}")
    missing = [n for n, spec in declared.items() if spec.required and not call.inputs.get(n)]
    if missing:
        raise FrameError(f"model {info.name!r} needs input(s) {missing}; the request gives {sorted(call.inputs)}")

    inputs: dict[str, list[Frame]] = {}
    digests: dict[tuple[str, int | None], str] = {}
    reference: Frame | None = None
    for name, frames in call.inputs.items():
        spec = declared[name]
        if not frames:
            continue
        if len(frames) > 2 * spec.temporal_radius + 1:
            raise FrameError(
                f"input {name!r} gives {len(frames)} frames; model {info.name!r} reads at most "
                f"{2 * spec.temporal_radius + 1} (temporal radius {spec.temporal_radius})"
            )
        numbers = [f.frame_number for f in frames]
        if len(frames) > 1 and (None in numbers or len(set(numbers)) != len(numbers)):
            raise FrameError(f"input {name!r}: several frames need distinct frame numbers; got {numbers}")
        checked = []
        for index, frame in enumerate(frames):
            role = f"input {name!r}"
            check_frame_size(f"{role} {frame.label()}", frame.width, frame.height, max_frame_pixels)
            if spec.channels:
                frame.require(spec.channels, role=role)
            elif not frame.channels:
                raise FrameError(f"{role} {frame.label()} has no channels")
            if reference is None:
                reference = frame
            elif not frame.same_windows(reference):
                raise FrameError(
                    f"{role} {frame.label()} has data window {frame.data_window} and display window "
                    f"{frame.display_window}; the first input has {reference.data_window} and "
                    f"{reference.display_window}: every input must share the plate's windows"
                )
            # A stream was scanned as it arrived; a unary request is scanned here.
            scanned = call.non_finite.get((name, index), []) if call.non_finite is not None else None
            if scanned is None or scanned:
                if call.sanitize_non_finite:
                    frame = frame.sanitised()
                else:
                    frame.check_finite(role=role)
            if (name, index) in call.pixel_digests:
                digests[(name, frame.frame_number)] = call.pixel_digests[(name, index)]
            checked.append(frame)
        inputs[name] = sorted(checked, key=lambda f: f.frame_number if f.frame_number is not None else 0)

    target = call.target_frame
    if target is None:
        first = inputs[info.inputs[0].name][0] if info.inputs and info.inputs[0].name in inputs else None
        target = first.frame_number if first is not None else None
    for name, frames in inputs.items():
        if len(frames) > 1 and target not in [f.frame_number for f in frames]:
            raise FrameError(
                f"input {name!r} holds frames {[f.frame_number for f in frames]} but not the target frame {target}"
            )
    return ToolCall(
        info=info,
        inputs=inputs,
        params=params,
        target_frame=target,
        cancelled=cancelled or threading.Event(),
        digests=digests,
        precision=call.precision,
    )
