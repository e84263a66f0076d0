"""Translation between plateforge's Python objects and protocol v1 messages.

One place knows the byte layout (planar, little-endian, data-window sized) so the client, the
server and the benchmarks cannot disagree about it. Chunked streams (ProcessStream) build on
this in :mod:`plateforge.streams`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from plateforge.calls import Precision, ProcessCall, ProcessResult
from plateforge.errors import FrameError, ParameterError
from plateforge.frames import PIXEL_DTYPES, Box, Frame, pixel_type_of
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamKind, ParamSpec, ParamValue
from plateforge.v1 import frame_pb2, inference_pb2, models_pb2

__all__ = [
    "MAX_CHANNELS_PER_CALL",
    "MAX_CHANNELS_PER_FRAME",
    "check_channel_counts",
    "decode_call",
    "decode_result",
    "encode_call",
    "encode_result",
    "frame_from_proto",
    "frame_to_proto",
    "info_from_proto",
    "info_to_proto",
    "param_from_proto",
    "param_to_proto",
    "request_frames",
    "response_frames",
]

#: Channels one frame may hold. Multi-layer render EXRs (every AOV, cryptomatte layers) run to a few
#: hundred; each channel costs a receiver bookkeeping (arrays, names) whatever its size, so a header
#: of millions of 1x1 channels would hold gigabytes before a single pixel arrives.
MAX_CHANNELS_PER_FRAME = 1024
#: Channels one request or response may hold over all its frames (temporal neighbours included).
MAX_CHANNELS_PER_CALL = 16384

_PIXEL_TO_PB = {
    "half": frame_pb2.PIXEL_TYPE_HALF,
    "float": frame_pb2.PIXEL_TYPE_FLOAT,
    "uint": frame_pb2.PIXEL_TYPE_UINT,
}
_PB_TO_PIXEL = {v: k for k, v in _PIXEL_TO_PB.items()}


# -- frames -----------------------------------------------------------------------------------


def _box_to_proto(box: Box) -> frame_pb2.Box2i:
    return frame_pb2.Box2i(min_x=box.min_x, min_y=box.min_y, max_x=box.max_x, max_y=box.max_y)


def box_from_proto(msg: frame_pb2.Box2i) -> Box:
    return Box(msg.min_x, msg.min_y, msg.max_x, msg.max_y)


def little_endian(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a C-contiguous little-endian array (no copy when it already is one)."""
    dtype = PIXEL_DTYPES[pixel_type_of(pixels)]
    return np.ascontiguousarray(pixels, dtype=dtype)


def frame_to_proto(frame: Frame, *, with_data: bool = True) -> frame_pb2.Frame:
    """``frame`` as a message; ``with_data=False`` leaves samples out (stream headers)."""
    msg = frame_pb2.Frame()
    _fill_frame(msg, frame, with_data=with_data)
    return msg


def _fill_frame(msg: frame_pb2.Frame, frame: Frame, *, with_data: bool) -> None:
    """Write ``frame`` into the empty message ``msg``, in place.

    Messages holding samples are built top-down (``.add()``, fields of the parent) on purpose:
    passing a built message to a parent's constructor (``Frame(channels=[...])``) copies it, so
    building bottom-up copies every sample once per level of nesting.
    """
    msg.MergeFrom(
        frame_pb2.Frame(
            data_window=_box_to_proto(frame.data_window),
            display_window=_box_to_proto(frame.display_window),
            frame_number=frame.frame_number,
            colour_space=frame.colour_space,
            attributes=frame.attributes,
            pixel_aspect=frame.pixel_aspect,
        )
    )
    for name, pixels in frame.channels.items():
        xs, ys = frame.sampling.get(name, (1, 1))
        msg.channels.add(
            name=name,
            pixel_type=_PIXEL_TO_PB[pixel_type_of(pixels)],
            x_sampling=xs,
            y_sampling=ys,
            data=little_endian(pixels).tobytes() if with_data else b"",
            byte_size=int(pixels.nbytes),
        )


def channel_layout(msg: frame_pb2.Frame, channel: frame_pb2.Channel) -> tuple[np.dtype, tuple[int, int], int]:
    """dtype, shape and byte size the header promises for ``channel``, checked for sanity."""
    if channel.pixel_type not in _PB_TO_PIXEL:
        raise FrameError(f"channel {channel.name!r} has no valid pixel type ({channel.pixel_type})")
    dtype = PIXEL_DTYPES[_PB_TO_PIXEL[channel.pixel_type]]
    xs, ys = channel.x_sampling or 1, channel.y_sampling or 1
    width = msg.data_window.max_x - msg.data_window.min_x + 1
    height = msg.data_window.max_y - msg.data_window.min_y + 1
    if width <= 0 or height <= 0 or xs <= 0 or ys <= 0:
        raise FrameError(f"channel {channel.name!r}: empty data window or bad sampling ({xs}, {ys})")
    shape = (height // ys, width // xs)
    return dtype, shape, shape[0] * shape[1] * dtype.itemsize


def check_channel_counts(frames: Iterable[tuple[str, frame_pb2.Frame]]) -> None:
    """Refuse a message whose frames (``(label, frame)`` pairs) hold more channels than a receiver
    takes: MAX_CHANNELS_PER_FRAME in one frame, MAX_CHANNELS_PER_CALL in all."""
    total = 0
    for label, msg in frames:
        count = len(msg.channels)
        if count > MAX_CHANNELS_PER_FRAME:
            raise FrameError(
                f"{label} has {count} channels; a frame may have at most {MAX_CHANNELS_PER_FRAME} "
                "(MAX_CHANNELS_PER_FRAME)"
            )
        total += count
        if total > MAX_CHANNELS_PER_CALL:
            raise FrameError(
                f"the message has more than {MAX_CHANNELS_PER_CALL} channels over all its frames "
                f"(MAX_CHANNELS_PER_CALL); {label} brings the count to {total}"
            )


def request_frames(msg: inference_pb2.ProcessRequest) -> list[tuple[str, frame_pb2.Frame]]:
    """Every frame of a request with a label naming it (``input 'plate' frame 1001``)."""
    out = []
    for given in msg.inputs:
        for j, frame in enumerate(given.frames):
            number = frame.frame_number if frame.HasField("frame_number") else f"#{j}"
            out.append((f"input {given.name!r} frame {number}", frame))
    return out


def response_frames(msg: inference_pb2.ProcessResponse) -> list[tuple[str, frame_pb2.Frame]]:
    """Every frame of a response with a label naming it (``output 'image'``)."""
    return [(f"output {out.name!r}", out.frame) for out in msg.outputs]


def frame_from_arrays(msg: frame_pb2.Frame, arrays: Sequence[np.ndarray]) -> Frame:
    channels: dict[str, np.ndarray] = {}
    sampling: dict[str, tuple[int, int]] = {}
    for channel, pixels in zip(msg.channels, arrays, strict=True):
        if channel.name in channels:
            raise FrameError(f"channel {channel.name!r} appears twice in one frame")
        channels[channel.name] = pixels
        xs, ys = channel.x_sampling or 1, channel.y_sampling or 1
        if (xs, ys) != (1, 1):
            sampling[channel.name] = (xs, ys)
    return Frame(
        channels=channels,
        data_window=box_from_proto(msg.data_window),
        display_window=box_from_proto(msg.display_window),
        frame_number=msg.frame_number if msg.HasField("frame_number") else None,
        colour_space=msg.colour_space,
        attributes=dict(msg.attributes),
        sampling=sampling,
        pixel_aspect=msg.pixel_aspect or 1.0,
    )


def frame_from_proto(msg: frame_pb2.Frame) -> Frame:
    """The frame a message holds; arrays view the message's bytes (read-only, no copy)."""
    if msg.shm_region:
        # Only the shared-memory path (plateforge.shm) can resolve a reference; here it would
        # silently become a frame of empty channels.
        raise FrameError(f"the frame's samples are in shared-memory region {msg.shm_region!r}, not in the message")
    arrays = []
    for channel in msg.channels:
        dtype, shape, size = channel_layout(msg, channel)
        if len(channel.data) != size:
            raise FrameError(
                f"channel {channel.name!r} carries {len(channel.data)} bytes; its window and type need {size}"
            )
        arrays.append(np.frombuffer(channel.data, dtype=dtype).reshape(shape))
    return frame_from_arrays(msg, arrays)


# -- model info and parameters -----------------------------------------------------------------

_KIND_TO_PB: dict[ParamKind, models_pb2.ParameterSpec.Kind] = {
    "float": models_pb2.ParameterSpec.KIND_FLOAT,
    "int": models_pb2.ParameterSpec.KIND_INT,
    "bool": models_pb2.ParameterSpec.KIND_BOOL,
    "string": models_pb2.ParameterSpec.KIND_STRING,
    "choice": models_pb2.ParameterSpec.KIND_CHOICE,
}
_PB_TO_KIND: dict[models_pb2.ParameterSpec.Kind, ParamKind] = {v: k for k, v in _KIND_TO_PB.items()}


def param_to_proto(value: ParamValue) -> models_pb2.ParamValue:
    if isinstance(value, bool):
        return models_pb2.ParamValue(boolean=value)
    if isinstance(value, (int, float)):
        return models_pb2.ParamValue(number=float(value))
    if isinstance(value, str):
        return models_pb2.ParamValue(text=value)
    raise ParameterError(f"parameter value {value!r} is not a number, bool or text")


def param_from_proto(msg: models_pb2.ParamValue) -> ParamValue:
    kind = msg.WhichOneof("kind")
    if kind == "number":
        number = msg.number
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return msg.boolean
    if kind == "text":
        return msg.text
    raise ParameterError("a parameter value arrived with no value set")


def info_to_proto(info: ModelInfo) -> models_pb2.ModelInfo:
    params = []
    for p in info.parameters:
        params.append(
            models_pb2.ParameterSpec(
                name=p.name,
                kind=_KIND_TO_PB[p.kind],
                default_value=param_to_proto(p.default),
                label=p.label,
                description=p.description,
                has_minimum=p.minimum is not None,
                minimum=p.minimum or 0.0,
                has_maximum=p.maximum is not None,
                maximum=p.maximum or 0.0,
                choices=list(p.choices),
            )
        )
    return models_pb2.ModelInfo(
        name=info.name,
        version=info.version,
        tool=info.tool,
        description=info.description,
        inputs=[
            models_pb2.InputSpec(
                name=i.name,
                description=i.description,
                required=i.required,
                channels=list(i.channels),
                temporal_radius=i.temporal_radius,
            )
            for i in info.inputs
        ],
        outputs=[
            models_pb2.OutputSpec(name=o.name, description=o.description, channels=list(o.channels))
            for o in info.outputs
        ],
        parameters=params,
        padding=info.padding,
        provenance=info.provenance,
        attributes=info.attributes,
        model_hash=info.model_hash,
    )


def info_from_proto(msg: models_pb2.ModelInfo) -> ModelInfo:
    params = []
    for p in msg.parameters:
        kind = _PB_TO_KIND.get(p.kind)
        if kind is None:
            raise ParameterError(f"model {msg.name!r} parameter {p.name!r} has an unknown kind ({p.kind})")
        default = param_from_proto(p.default_value)
        if kind == "float" and isinstance(default, int):
            default = float(default)
        params.append(
            ParamSpec(
                name=p.name,
                kind=kind,
                default=default,
                label=p.label,
                description=p.description,
                minimum=p.minimum if p.has_minimum else None,
                maximum=p.maximum if p.has_maximum else None,
                choices=tuple(p.choices),
            )
        )
    return ModelInfo(
        name=msg.name,
        version=msg.version,
        tool=msg.tool,
        description=msg.description,
        inputs=tuple(
            InputSpec(i.name, i.description, i.required, tuple(i.channels), i.temporal_radius) for i in msg.inputs
        ),
        outputs=tuple(OutputSpec(o.name, o.description, tuple(o.channels)) for o in msg.outputs),
        parameters=tuple(params),
        padding=msg.padding,
        provenance=msg.provenance,
        attributes=dict(msg.attributes),
        model_hash=msg.model_hash,
    )


# -- whole calls ---------------------------------------------------------------------------------


def encode_call(call: ProcessCall, *, with_data: bool = True) -> inference_pb2.ProcessRequest:
    request = inference_pb2.ProcessRequest(
        model=call.model,
        version=call.version,
        params={k: param_to_proto(v) for k, v in call.params.items()},
        target_frame=call.target_frame,
        sanitize_non_finite=call.sanitize_non_finite,
        precision=_PRECISION_TO_PROTO[call.precision],
    )
    for name, frames in call.inputs.items():
        given = request.inputs.add(name=name)
        for f in frames:
            _fill_frame(given.frames.add(), f, with_data=with_data)
    return request


def call_from(msg: inference_pb2.ProcessRequest, frames: dict[tuple[int, int], Frame]) -> ProcessCall:
    inputs: dict[str, list[Frame]] = {}
    for i, given in enumerate(msg.inputs):
        if given.name in inputs:
            raise FrameError(f"input {given.name!r} is given twice")
        inputs[given.name] = [frames[(i, j)] for j in range(len(given.frames))]
    return ProcessCall(
        model=msg.model,
        inputs=inputs,
        params={k: param_from_proto(v) for k, v in msg.params.items()},
        version=msg.version,
        target_frame=msg.target_frame if msg.HasField("target_frame") else None,
        sanitize_non_finite=msg.sanitize_non_finite,
        precision=_precision_from_proto(msg.precision),
    )


_PRECISION_TO_PROTO: dict[Precision, inference_pb2.Precision] = {
    "auto": inference_pb2.PRECISION_AUTO,
    "fp32": inference_pb2.PRECISION_FP32,
}


def _precision_from_proto(value: int) -> Precision:
    for name, number in _PRECISION_TO_PROTO.items():
        if number == value:
            return name
    raise FrameError(f"unknown precision {value} in the request; this server knows {sorted(_PRECISION_TO_PROTO)}")


def decode_call(msg: inference_pb2.ProcessRequest) -> ProcessCall:
    check_channel_counts(request_frames(msg))
    frames = {(i, j): frame_from_proto(f) for i, inp in enumerate(msg.inputs) for j, f in enumerate(inp.frames)}
    return call_from(msg, frames)


def encode_result(result: ProcessResult, *, with_data: bool = True) -> inference_pb2.ProcessResponse:
    response = inference_pb2.ProcessResponse(provenance=result.provenance)
    for name, f in result.outputs.items():
        _fill_frame(response.outputs.add(name=name).frame, f, with_data=with_data)
    return response


def result_from(msg: inference_pb2.ProcessResponse, frames: dict[tuple[int, int], Frame]) -> ProcessResult:
    return ProcessResult(
        outputs={out.name: frames[(k, 0)] for k, out in enumerate(msg.outputs)},
        provenance=dict(msg.provenance),
    )


def decode_result(msg: inference_pb2.ProcessResponse) -> ProcessResult:
    check_channel_counts(response_frames(msg))
    frames = {(k, 0): frame_from_proto(out.frame) for k, out in enumerate(msg.outputs)}
    return result_from(msg, frames)
