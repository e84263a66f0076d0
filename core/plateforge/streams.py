"""ProcessStream: frames of any size as a header and a run of DataChunks.

A stream carries the request (or response) header first, its channels holding only their
``byte_size``, then every channel's samples in chunks of ``CHUNK_BYTES``. Messages travel
serialised: chunks are written and read by :mod:`plateforge.chunkwire` without protobuf's
copies, and :class:`ChunkAssembler` writes each chunk straight into the destination array, so a
frame is copied once on the way in and once on the way out. While chunks land, the receiver
checks them for NaN/Inf and hashes the provenance source, overlapping the transfer.

A receiver trusts nothing about the chunks but their bytes: every byte of every channel the
header declares must arrive exactly once (:class:`_Coverage` keeps the ranges written), so a
stream whose chunks repeat, overlap or leave a gap is refused naming the channel and the bytes,
whatever their total: a buffer is handed on only when every byte of it was written by this
stream, so no byte of another caller's earlier frame can reach a tool or a response. A header
is bounded before it is parsed (``MAX_HEADER_BYTES``) and its channels are counted
(codec.MAX_CHANNELS_PER_FRAME, MAX_CHANNELS_PER_CALL) before anything is allocated for them.
"""

from __future__ import annotations

import bisect
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
from google.protobuf.message import DecodeError

from plateforge.calls import CHUNK_BYTES, ProcessCall, ProcessResult
from plateforge.chunkwire import Chunk, decode_chunk, encode_chunk
from plateforge.codec import (
    box_from_proto,
    call_from,
    channel_layout,
    check_channel_counts,
    encode_call,
    encode_result,
    frame_from_arrays,
    little_endian,
    request_frames,
    response_frames,
    result_from,
)
from plateforge.errors import FrameError, FrameTooLargeError
from plateforge.frames import Frame, has_non_finite
from plateforge.provenance import channel_preamble, finish, pixels_digest, pixels_hasher
from plateforge.v1 import frame_pb2, inference_pb2

__all__ = [
    "MAX_HEADER_BYTES",
    "CallGatherer",
    "ChunkAssembler",
    "gather_call",
    "gather_result",
    "stream_call",
    "stream_result",
]

#: Largest serialised stream header a receiver parses. A header holds no samples (they follow
#: as DataChunks), only windows, channel names and string attributes: a request with every
#: channel MAX_CHANNELS_PER_CALL allows, named at length, needs well under this.
MAX_HEADER_BYTES = 1024 * 1024


def _chunks(images: Iterable[tuple[int, int, Frame]], chunk_bytes: int) -> Iterator[bytes]:
    """Serialised stream messages, one DataChunk each, copying each sample once (chunkwire)."""
    for image_index, frame_index, frame in images:
        for channel_index, pixels in enumerate(frame.channels.values()):
            flat = little_endian(pixels).reshape(-1).view(np.uint8).data
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
    if len(raw) > MAX_HEADER_BYTES:
        raise FrameError(
            f"a ProcessStream {what} header is {len(raw)} bytes; a header may be at most {MAX_HEADER_BYTES} "
            "(MAX_HEADER_BYTES): samples travel as DataChunks, not in the header"
        )
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
    """provenance.pixels_digest of one image, fed chunk by chunk while the chunks arrive in order.

    Hashing runs on a thread of its own (xxhash releases the GIL for large buffers), so it proceeds on another
    core while the receiving thread copies the next chunk.
    """

    def __init__(self, msg: frame_pb2.Frame, sizes: list[int]) -> None:
        self.hasher = pixels_hasher(box_from_proto(msg.data_window), box_from_proto(msg.display_window))
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

    def close(self) -> None:
        """Stop the hashing thread (idempotent): a stream that fails before :meth:`digest` must not
        leave it waiting on its queue for ever."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def digest(self) -> str | None:
        """The digest, or None when chunks came out of order (or ended early)."""
        self.close()
        return finish(self.hasher) if self.in_order and self.channel == len(self.sizes) else None


class _Coverage:
    """The byte ranges of one channel written so far: sorted, disjoint, adjacent ones merged.

    A stream sent in order stays one range that grows at its end (constant work per chunk);
    chunks out of order add ranges that merge as the gaps fill. ``MAX_RANGES`` bounds the gaps
    one channel may hold open, so a hostile order cannot make the bookkeeping grow without end.
    """

    MAX_RANGES = 4096

    def __init__(self, size: int) -> None:
        self.size = size
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> tuple[int, int] | None:
        """Record bytes ``start..end``; the part already written, or None when none was."""
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(starts, start)
        if i > 0 and ends[i - 1] > start:
            return start, min(end, ends[i - 1])
        if i < len(starts) and starts[i] < end:
            return starts[i], min(end, ends[i])
        joins_left = i > 0 and ends[i - 1] == start
        joins_right = i < len(starts) and starts[i] == end
        if joins_left and joins_right:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif joins_left:
            ends[i - 1] = end
        elif joins_right:
            starts[i] = start
        else:
            if len(starts) >= self.MAX_RANGES:
                raise FrameError(
                    f"chunks leave more than {self.MAX_RANGES} gaps open in one channel; send a channel's chunks "
                    "in order, or fewer and larger"
                )
            starts.insert(i, start)
            ends.insert(i, end)
        return None

    def first_gap(self) -> tuple[int, int] | None:
        """The first range of bytes never written, or None when every byte was."""
        if not self._starts:
            return (0, self.size) if self.size else None
        if self._starts[0] > 0:
            return 0, self._starts[0]
        if self._ends[0] < self.size:
            return self._ends[0], self._starts[1] if len(self._starts) > 1 else self.size
        return None


class ChunkAssembler:
    """Collects the DataChunks of the frames a stream header announced, then builds the frames.

    ``max_bytes`` bounds what a header may announce, so a hostile or mistaken header cannot make
    the receiver allocate more than it is willing to hold. Every byte of every channel must arrive
    exactly once: a chunk that writes bytes already written is refused at once, and
    :meth:`frames` refuses a channel with bytes missing; both errors name the channel (``labels``
    names the images) and the bytes. With ``scan_finite`` every chunk is checked for NaN/Inf as it
    lands, and images in ``digest`` are hashed as their chunks arrive: both passes over the
    pixels then overlap the transfer instead of following it.
    """

    def __init__(
        self,
        headers: dict[tuple[int, int], frame_pb2.Frame],
        *,
        max_bytes: int | None = None,
        scan_finite: bool = False,
        digest: Iterable[tuple[int, int]] = (),
        labels: dict[tuple[int, int], str] | None = None,
    ) -> None:
        self._headers = headers
        self._labels = labels or {}
        self._buffers: dict[tuple[int, int, int], np.ndarray] = {}
        self._coverage: dict[tuple[int, int, int], _Coverage] = {}
        self._layout: dict[tuple[int, int, int], tuple[np.dtype, tuple[int, int]]] = {}
        total = 0
        for (i, j), msg in headers.items():
            for c, channel in enumerate(msg.channels):
                dtype, shape, size = channel_layout(msg, channel)
                if channel.byte_size != size:
                    raise FrameError(
                        f"{self._channel((i, j, c))} announces {channel.byte_size} bytes; "
                        f"its window and type need {size}"
                    )
                total += size
                self._layout[(i, j, c)] = (dtype, shape)
        if max_bytes is not None and total > max_bytes:
            raise FrameTooLargeError(f"the stream announces {total} bytes of pixels; the limit is {max_bytes}")
        for key, (dtype, shape) in self._layout.items():
            # Not zeroed: no byte of this buffer leaves it unwritten (_Coverage: frames() refuses a
            # channel with any byte missing), and zeroing is not free. A channel's buffer is
            # smaller than glibc's dynamic mmap threshold, so after the first frame it comes from
            # the heap and np.zeros memsets it: ~20 ms a 4K frame, 15 % of a round trip.
            self._buffers[key] = np.empty(shape[0] * shape[1] * dtype.itemsize, dtype=np.uint8)
            self._coverage[key] = _Coverage(self._buffers[key].size)
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

    def _channel(self, key: tuple[int, int, int]) -> str:
        i, j, c = key
        image = self._labels.get((i, j), f"image {i} frame {j}")
        msg = self._headers.get((i, j))
        name = msg.channels[c].name if msg is not None and c < len(msg.channels) else None
        return f"{image} channel {name!r}" if name is not None else f"{image} channel {c}"

    def add(self, image_index: int, frame_index: int, channel_index: int, offset: int, data: memoryview) -> None:
        key = (image_index, frame_index, channel_index)
        buffer = self._buffers.get(key)
        if buffer is None:
            raise FrameError(f"data chunk for image {key[0]} frame {key[1]} channel {key[2]} matches no header channel")
        end = offset + data.nbytes
        if end > buffer.size:
            raise FrameError(
                f"data chunk for {self._channel(key)} (bytes {offset}..{end}) runs past the channel's end "
                f"({buffer.size})"
            )
        if not data.nbytes:
            return
        again = self._coverage[key].add(offset, end)
        if again is not None:
            raise FrameError(
                f"{self._channel(key)}: bytes {again[0]}..{again[1]} arrive twice (chunks repeat or overlap); "
                "every byte of a channel must arrive exactly once"
            )
        buffer[offset:end] = np.frombuffer(data, dtype=np.uint8)
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
        for key, coverage in self._coverage.items():
            gap = coverage.first_gap()
            if gap is not None:
                raise FrameError(
                    f"stream ended early: {self._channel(key)} is missing bytes {gap[0]}..{gap[1]} "
                    f"(of {coverage.size}); every byte of a channel must arrive exactly once"
                )
        out = {}
        for (i, j), msg in self._headers.items():
            arrays = []
            for c in range(len(msg.channels)):
                dtype, shape = self._layout[(i, j, c)]
                arrays.append(self._buffers[(i, j, c)].view(dtype).reshape(shape))
            out[(i, j)] = frame_from_arrays(msg, arrays)
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

    def close(self) -> None:
        """Stop every running digest's thread; for a stream given up before :meth:`digests`."""
        for running in self._digests.values():
            running.close()

    def digests(self, frames: dict[tuple[int, int], Frame]) -> dict[tuple[int, int], str]:
        """provenance.pixels_digest of the images asked for, from the running hashes where the
        chunks came in order."""
        return {key: running.digest() or pixels_digest(frames[key]) for key, running in self._digests.items()}


class CallGatherer:
    """A ProcessStreamRequest's call, built message by message: :func:`gather_call` for a
    receiver that is handed messages one at a time (the server's event loop) rather than
    reading an iterator on a thread of its own.

    ``inspect_header`` sees the header before any pixel arrives: it may refuse the call (raise),
    and it names the images (input index, frame index) whose provenance hash the receiver wants;
    those are hashed while their chunks arrive. :meth:`close` must follow, whatever happens.
    """

    def __init__(
        self,
        first: bytes | None,
        *,
        max_bytes: int | None = None,
        inspect_header: Callable[[inference_pb2.ProcessRequest], Iterable[tuple[int, int]]] | None = None,
    ) -> None:
        header = _read_header(first, inference_pb2.ProcessStreamRequest, "request").header
        labelled = request_frames(header)
        check_channel_counts(labelled)
        headers = {(i, j): f for i, inp in enumerate(header.inputs) for j, f in enumerate(inp.frames)}
        labels = dict(zip(headers, (label for label, _ in labelled), strict=True))
        wanted = list(inspect_header(header)) if inspect_header is not None else []
        self._header = header
        self._assembler = ChunkAssembler(headers, max_bytes=max_bytes, scan_finite=True, digest=wanted, labels=labels)

    def add(self, raw: bytes) -> None:
        """One chunk message: refused at once if it repeats, overlaps or matches no channel."""
        self._assembler.add(*_read_chunk(raw, inference_pb2.ProcessStreamRequest, "request"))

    def call(self) -> ProcessCall:
        """The call, once every message is in: refused if any channel misses bytes."""
        assembler, header = self._assembler, self._header
        frames = assembler.frames()
        call = call_from(header, frames)
        names = [inp.name for inp in header.inputs]
        call.non_finite = {(names[i], j): bad for (i, j), bad in assembler.non_finite().items()}
        call.pixel_digests = {(names[i], j): d for (i, j), d in assembler.digests(frames).items()}
        return call

    def close(self) -> None:
        """Stop the hashing threads (idempotent): a refused or abandoned stream leaves none behind."""
        self._assembler.close()


def gather_call(
    messages: Iterator[bytes],
    *,
    max_bytes: int | None = None,
    inspect_header: Callable[[inference_pb2.ProcessRequest], Iterable[tuple[int, int]]] | None = None,
) -> ProcessCall:
    """The call that serialised ProcessStreamRequest messages carry, scanned for NaN/Inf as
    they arrived (see :class:`CallGatherer`)."""
    gatherer = CallGatherer(next(messages, None), max_bytes=max_bytes, inspect_header=inspect_header)
    try:
        for raw in messages:
            gatherer.add(raw)
        return gatherer.call()
    finally:
        gatherer.close()


def gather_result(messages: Iterator[bytes]) -> ProcessResult:
    """The result that serialised ProcessStreamResponse messages carry."""
    header = _read_header(next(messages, None), inference_pb2.ProcessStreamResponse, "response").header
    labelled = response_frames(header)
    check_channel_counts(labelled)
    labels = {(k, 0): label for k, (label, _) in enumerate(labelled)}
    assembler = ChunkAssembler({(k, 0): out.frame for k, out in enumerate(header.outputs)}, labels=labels)
    for raw in messages:
        assembler.add(*_read_chunk(raw, inference_pb2.ProcessStreamResponse, "response"))
    return result_from(header, assembler.frames())
