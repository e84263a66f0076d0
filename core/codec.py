"""Translation between plateforge's Python objects and protocol v1 messages.

One place knows the byte layout (planar, little-endian, data-window sized) so the client, the
server and the benchmarks cannot disagree about it. Streams carry each channel as a sequence of
:class:`~plateforge.v1.inference_pb2.DataChunk` after a header whose channels hold only their
``byte_size``; :class:`ChunkAssembler` writes chunks straight into the destination arrays, so a
frame is copied once on the way in and once on the way out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from google.protobuf.message import DecodeError

from plateforge.calls import CHUNK_BYTES, ProcessCall, ProcessResult
from plateforge.chunkwire import Chunk, decode_chunk, encode_chunk
from plateforge.errors import FrameError, FrameTooLargeError, ParameterError
from plateforge.frames import PIXEL_DTYPES, Box, Frame, has_non_finite, pixel_type_of
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamKind, ParamSpec, ParamValue
from plateforge.provenance import channel_preamble, pixels_hasher, pixels_sha256
from plateforge.v1 import frame_pb2, inference_pb2, models_pb2

__all__ = [
    "ChunkAssembler",
    "decode_call",
    "decode_result",
    "encode_call",
    "encode_result",
    "frame_from_proto",
    "frame_to_proto",
    "gather_call",
    "gather_result",
    "info_from_proto",
    "info_to_proto",
    "param_from_proto",
    "param_to_proto",
    "stream_call",
    "stream_result",
]

_PIXEL_TO_PB = {
    "half": frame_pb2.PIXEL_TYPE_HALF,
    "float": frame_pb2.PIXEL_TYPE_FLOAT,
    "uint": frame_pb2.PIXEL_TYPE_UINT,
}
_PB_TO_PIXEL = {v: k for k, v in _PIXEL_TO_PB.items()}


# -- frames -----------------------------------------------------------------------------------


def _box_to_proto(box: Box) -> frame_pb2.Box2i:
    return frame_pb2.Box2i(min_x=box.min_x, min_y=box.min_y, max_x=box.max_x, max_y=box.max_y)


def _box_from_proto(msg: frame_pb2.Box2i) -> Box:
    return Box(msg.min_x, msg.min_y, msg.max_x, msg.max_y)


def _le(pixels: np.ndarray) -> np.ndarray:
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
            data=_le(pixels).tobytes() if with_data else b"",
            byte_size=int(pixels.nbytes),
        )


def _channel_layout(msg: frame_pb2.Frame, channel: frame_pb2.Channel) -> tuple[np.dtype, tuple[int, int], int]:
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


def _frame_from_arrays(msg: frame_pb2.Frame, arrays: Sequence[np.ndarray]) -> Frame:
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
        data_window=_box_from_proto(msg.data_window),
        display_window=_box_from_proto(msg.display_window),
        frame_number=msg.frame_number if msg.HasField("frame_number") else None,
        colour_space=msg.colour_space,
        attributes=dict(msg.attributes),
        sampling=sampling,
        pixel_aspect=msg.pixel_aspect or 1.0,
    )


def frame_from_proto(msg: frame_pb2.Frame) -> Frame:
    """The frame a message holds; arrays view the message's bytes (read-only, no copy)."""
    arrays = []
    for channel in msg.channels:
        dtype, shape, size = _channel_layout(msg, channel)
        if len(channel.data) != size:
            raise FrameError(
                f"channel {channel.name!r} carries {len(channel.data)} bytes; its window and type need {size}"
            )
        arrays.append(np.frombuffer(channel.data, dtype=dtype).reshape(shape))
    return _frame_from_arrays(msg, arrays)


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
    )


# -- whole calls ---------------------------------------------------------------------------------


def encode_call(call: ProcessCall, *, with_data: bool = True) -> inference_pb2.ProcessRequest:
    request = inference_pb2.ProcessRequest(
        model=call.model,
        version=call.version,
        params={k: param_to_proto(v) for k, v in call.params.items()},
        target_frame=call.target_frame,
        sanitize_non_finite=call.sanitize_non_finite,
    )
    for name, frames in call.inputs.items():
        given = request.inputs.add(name=name)
        for f in frames:
            _fill_frame(given.frames.add(), f, with_data=with_data)
    return request


def _call_from(msg: inference_pb2.ProcessRequest, frames: dict[tuple[int, int], Frame]) -> ProcessCall:
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
    )


def decode_call(msg: inference_pb2.ProcessRequest) -> ProcessCall:
    frames = {(i, j): frame_from_proto(f) for i, inp in enumerate(msg.inputs) for j, f in enumerate(inp.frames)}
    return _call_from(msg, frames)


def encode_result(result: ProcessResult, *, with_data: bool = True) -> inference_pb2.ProcessResponse:
    response = inference_pb2.ProcessResponse(provenance=result.provenance)
    for name, f in result.outputs.items():
        _fill_frame(response.outputs.add(name=name).frame, f, with_data=with_data)
    return response


def _result_from(msg: inference_pb2.ProcessResponse, frames: dict[tuple[int, int], Frame]) -> ProcessResult:
    return ProcessResult(
        outputs={out.name: frames[(k, 0)] for k, out in enumerate(msg.outputs)},
        provenance=dict(msg.provenance),
    )


def decode_result(msg: inference_pb2.ProcessResponse) -> ProcessResult:
    frames = {(k, 0): frame_from_proto(out.frame) for k, out in enumerate(msg.outputs)}
    return _result_from(msg, frames)


# -- streams -----------------------------------------------------------------------------------


def _chunks(images: Iterable[tuple[int, int, Frame]], chunk_bytes: int) -> Iterator[bytes]:
    """Serialised stream messages, one DataChunk each, copying each sample once (chunkwire)."""
    for image_index, frame_index, frame in images:
        for channel_index, pixels in enumerate(frame.channels.values()):
            flat = _le(pixels).reshape(-1).view(np.uint8).data
            for offset in range(0, flat.nbytes, chunk_bytes):
                yield encode_chunk(image_index, frame_index, channel_index, offset, flat[offset : offset + chunk_bytes])


def stream_call(call: ProcessCall, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The serialised ProcessStreamRequest messages of ``call``: header, then every channel in chunks."""
    yield inference_pb2.ProcessStreamRequest(header=encode_call(call, with_data=False)).SerializeToString()
    images = ((i, j, f) for i, frames in enumerate(call.inputs.values()) for j, f in enumerate(frames))
    yield from _chunks(images, chunk_bytes)


def stream_result(result: ProcessResult, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The serialised ProcessStreamResponse messages of ``result``: header, then chunks."""
    yield inference_pb2.ProcessStreamResponse(header=encode_result(result, with_data=False)).SerializeToString()
    images = ((k, 0, f) for k, f in enumerate(result.outputs.values()))
    yield from _chunks(images, chunk_bytes)


_StreamMessage = TypeVar("_StreamMessage", inference_pb2.ProcessStreamRequest, inference_pb2.ProcessStreamResponse)


def _read_header(raw: bytes | None, message_type: type[_StreamMessage], what: str) -> _StreamMessage:
    if raw is None or decode_chunk(raw) is not None:
        raise FrameError(f"a ProcessStream {what} must start with its header")
    try:
        message = message_type.FromString(raw)
    except DecodeError as error:
        raise FrameError(f"a ProcessStream {what} header does not parse: {error}") from None
    if message.WhichOneof("part") != "header":
        raise FrameError(f"a ProcessStream {what} must start with its header")
    return message


def _read_chunk(raw: bytes, message_type: type[_StreamMessage], what: str) -> Chunk:
    chunk = decode_chunk(raw)
    if chunk is not None:
        return chunk
    try:  # valid protobuf in a layout the fast path does not take (another client's encoder)
        message = message_type.FromString(raw)
    except DecodeError as error:
        raise FrameError(f"a ProcessStream {what} message does not parse: {error}") from None
    if message.WhichOneof("part") != "chunk":
        raise FrameError(f"a ProcessStream {what} holds one header only")
    c = message.chunk
    return c.image_index, c.frame_index, c.channel_index, c.offset, memoryview(c.data)


class _RunningDigest:
    """provenance.pixels_sha256 of one image, fed chunk by chunk while the chunks arrive in order.

    Hashing runs on a thread of its own (hashlib releases the GIL), so it proceeds on another
    core while the receiving thread copies the next chunk.
    """

    def __init__(self, msg: frame_pb2.Frame, sizes: list[int]) -> None:
        self.hasher = pixels_hasher(_box_from_proto(msg.data_window), _box_from_proto(msg.display_window))
        self._queue: queue.SimpleQueue[bytes | memoryview | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._hash, name="plateforge-digest", daemon=True)
        self._worker.start()
        self.msg = msg
        self.sizes = sizes
        self.channel = 0
        self.offset = 0
        self.in_order = True
        self._skip_empty()

    def _skip_empty(self) -> None:
        while self.channel < len(self.sizes) and self.offset == self.sizes[self.channel]:
            self.channel += 1
            self.offset = 0

    def feed(self, channel: int, offset: int, data: memoryview, dtype: np.dtype) -> None:
        if not self.in_order or channel != self.channel or offset != self.offset:
            self.in_order = False  # out of order: the digest is computed from the whole frame later
            return
        if offset == 0:
            self._queue.put(channel_preamble(self.msg.channels[channel].name, dtype))
        self._queue.put(data)
        self.offset += data.nbytes
        self._skip_empty()

    def _hash(self) -> None:
        while (data := self._queue.get()) is not None:
            self.hasher.update(data)

    def hexdigest(self) -> str | None:
        """The digest, or None when chunks came out of order (or ended early)."""
        self._queue.put(None)
        self._worker.join()
        return self.hasher.hexdigest() if self.in_order and self.channel == len(self.sizes) else None


class ChunkAssembler:
    """Collects the DataChunks of the frames a stream header announced, then builds the frames.

    ``max_bytes`` bounds what a header may announce, so a hostile or mistaken header cannot make
    the receiver allocate more than it is willing to hold. With ``scan_finite`` every chunk is
    checked for NaN/Inf as it lands, and images in ``digest`` are hashed as their chunks arrive:
    both passes over the pixels then overlap the transfer instead of following it.
    """

    def __init__(
        self,
        headers: dict[tuple[int, int], frame_pb2.Frame],
        *,
        max_bytes: int | None = None,
        scan_finite: bool = False,
        digest: Iterable[tuple[int, int]] = (),
    ) -> None:
        self._headers = headers
        self._buffers: dict[tuple[int, int, int], np.ndarray] = {}
        self._received: dict[tuple[int, int, int], int] = {}
        self._layout: dict[tuple[int, int, int], tuple[np.dtype, tuple[int, int]]] = {}
        total = 0
        for (i, j), msg in headers.items():
            for c, channel in enumerate(msg.channels):
                dtype, shape, size = _channel_layout(msg, channel)
                if channel.byte_size != size:
                    raise FrameError(
                        f"channel {channel.name!r} announces {channel.byte_size} bytes; its window and type need {size}"
                    )
                total += size
                self._layout[(i, j, c)] = (dtype, shape)
                self._received[(i, j, c)] = 0
        if max_bytes is not None and total > max_bytes:
            raise FrameTooLargeError(f"the stream announces {total} bytes of pixels; the limit is {max_bytes}")
        for key, (dtype, shape) in self._layout.items():
            self._buffers[key] = np.empty(shape[0] * shape[1] * dtype.itemsize, dtype=np.uint8)
        self._scan = scan_finite
        #: Channels found to hold NaN/Inf, and channels whose chunks could not be scanned in place.
        self._non_finite: set[tuple[int, int, int]] = set()
        self._unscanned: set[tuple[int, int, int]] = set()
        self._digests = {
            key: _RunningDigest(
                headers[key], [self._buffers[(key[0], key[1], c)].size for c in range(len(headers[key].channels))]
            )
            for key in digest
            if key in headers
        }

    def add(self, image_index: int, frame_index: int, channel_index: int, offset: int, data: memoryview) -> None:
        key = (image_index, frame_index, channel_index)
        buffer = self._buffers.get(key)
        if buffer is None:
            raise FrameError(f"data chunk for image {key[0]} frame {key[1]} channel {key[2]} matches no header channel")
        end = offset + data.nbytes
        if end > buffer.size:
            raise FrameError(f"data chunk for image {key[0]} channel {key[2]} runs past the channel's end")
        buffer[offset:end] = np.frombuffer(data, dtype=np.uint8)
        self._received[key] += data.nbytes
        dtype = self._layout[key][0]
        if self._scan and dtype.kind == "f" and key not in self._non_finite:
            if offset % dtype.itemsize or data.nbytes % dtype.itemsize:
                self._unscanned.add(key)
            elif has_non_finite(buffer[offset:end].view(dtype)):
                self._non_finite.add(key)
        running = self._digests.get(key[:2])
        if running is not None:
            running.feed(key[2], offset, data, dtype)

    def frames(self) -> dict[tuple[int, int], Frame]:
        short = [k for k, n in self._received.items() if n != self._buffers[k].size]
        if short:
            i, j, c = short[0]
            got, want = self._received[short[0]], self._buffers[short[0]].size
            raise FrameError(f"stream ended early: image {i} frame {j} channel {c} got {got} of {want} bytes")
        out = {}
        for (i, j), msg in self._headers.items():
            arrays = []
            for c in range(len(msg.channels)):
                dtype, shape = self._layout[(i, j, c)]
                arrays.append(self._buffers[(i, j, c)].view(dtype).reshape(shape))
            out[(i, j)] = _frame_from_arrays(msg, arrays)
        return out

    def non_finite(self) -> dict[tuple[int, int], list[str]]:
        """Names of the channels holding NaN/Inf, for every image (call after :meth:`frames`)."""
        for key in self._unscanned - self._non_finite:
            if has_non_finite(self._buffers[key].view(self._layout[key][0])):
                self._non_finite.add(key)
        found: dict[tuple[int, int], list[str]] = {image: [] for image in self._headers}
        for i, j, c in sorted(self._non_finite):
            found[(i, j)].append(self._headers[(i, j)].channels[c].name)
        return found

    def digests(self, frames: dict[tuple[int, int], Frame]) -> dict[tuple[int, int], str]:
        """provenance.pixels_sha256 of the images asked for, from the running hashes where the
        chunks came in order."""
        return {key: running.hexdigest() or pixels_sha256(frames[key]) for key, running in self._digests.items()}


def gather_call(
    messages: Iterator[bytes],
    *,
    max_bytes: int | None = None,
    inspect_header: Callable[[inference_pb2.ProcessRequest], Iterable[tuple[int, int]]] | None = None,
) -> ProcessCall:
    """The call that serialised ProcessStreamRequest messages carry, scanned for NaN/Inf as
    they arrived.

    ``inspect_header`` sees the header before any pixel arrives: it may refuse the call (raise),
    and it names the images (input index, frame index) whose provenance hash the receiver wants;
    those are hashed while their chunks arrive.
    """
    header = _read_header(next(messages, None), inference_pb2.ProcessStreamRequest, "request").header
    headers = {(i, j): f for i, inp in enumerate(header.inputs) for j, f in enumerate(inp.frames)}
    wanted = list(inspect_header(header)) if inspect_header is not None else []
    assembler = ChunkAssembler(headers, max_bytes=max_bytes, scan_finite=True, digest=wanted)
    for raw in messages:
        assembler.add(*_read_chunk(raw, inference_pb2.ProcessStreamRequest, "request"))
    frames = assembler.frames()
    call = _call_from(header, frames)
    names = [inp.name for inp in header.inputs]
    call.non_finite = {(names[i], j): bad for (i, j), bad in assembler.non_finite().items()}
    call.pixel_digests = {(names[i], j): d for (i, j), d in assembler.digests(frames).items()}
    return call


def gather_result(messages: Iterator[bytes]) -> ProcessResult:
    """The result that serialised ProcessStreamResponse messages carry."""
    header = _read_header(next(messages, None), inference_pb2.ProcessStreamResponse, "response").header
    assembler = ChunkAssembler({(k, 0): out.frame for k, out in enumerate(header.outputs)})
    for raw in messages:
        assembler.add(*_read_chunk(raw, inference_pb2.ProcessStreamResponse, "response"))
    return _result_from(header, assembler.frames())
