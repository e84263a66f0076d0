"""The plateforge.v1.Inference service: ListModels, Process and ProcessStream.

Handlers only translate: decode the request (codec), check it (checks), run the tool, encode
the result. Errors are PlateforgeError subclasses; the interceptor turns them into status codes.
A cancelled or abandoned call sets an Event the tool polls, so its work stops early.

The handlers are coroutines on the server's event loop, so a call that waits (for its client's
next message, or for a free worker) holds no thread. Tools run on the ``compute`` executor
(``--workers`` threads). A ProcessStream's chunks are copied into place on the event loop as
they arrive (the provenance hash runs on a thread of its own); the ``receive`` executor only
finishes the frame once its last chunk is in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from plateforge import __version__, codec, streams
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.errors import FrameError, SharedMemoryError
from plateforge.provenance import pixels_digest, record
from plateforge.v1 import inference_pb2, inference_pb2_grpc
from plateforge_server import shm
from plateforge_server.checks import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_REQUEST_BYTES, check_call, check_frame_size
from plateforge_server.fields import check_text_fields
from plateforge_server.interceptors import when_done
from plateforge_server.registry import LoadedModel, Registry
from plateforge_server.status.metrics import ServerMetrics, Tracked

__all__ = ["SERVICE_NAME", "InferenceService", "add_to_server"]

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name

log = logging.getLogger("plateforge_server")

Context = aio.ServicerContext[Any, Any]


def _cancel_event(context: Context) -> threading.Event:
    """An Event set when the call ends for any reason (done, cancelled, deadline): tools poll it."""
    cancelled = threading.Event()
    when_done(context, cancelled.set)
    return cancelled


class InferenceService:
    def __init__(
        self,
        registry: Registry,
        *,
        max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        compute: Executor,
        receive: Executor,
    ) -> None:
        self.registry = registry
        #: Runs tools: its size is how many frames are computed at once.
        self.compute = compute
        #: Finishes streamed frames (gap check, provenance hash) once their last chunk is in.
        self.receive = receive
        self.max_frame_pixels = max_frame_pixels
        self.max_request_bytes = max_request_bytes
        #: Same-host shared-memory regions (server/plateforge_server/shm.py); None: Process refuses references.
        self.shm_regions: shm.RegionTable | None = None
        #: Counts each frame request (server/plateforge_server/status/metrics.py); the server shares its own.
        self.metrics = ServerMetrics()

    async def ListModels(
        self, request: inference_pb2.ListModelsRequest, context: Context
    ) -> inference_pb2.ListModelsResponse:
        return inference_pb2.ListModelsResponse(models=[codec.info_to_proto(i) for i in self.registry.infos()])

    async def Process(self, request: bytes, context: Context) -> bytes:
        # Frames are up to the message limit: parsing and serialising them happens on the compute
        # thread too, never on the event loop every other call needs.
        cancelled = _cancel_event(context)
        with self.metrics.request("unary") as tracked:
            tracked.bytes_in = len(request)
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(self.compute, self._process, request, cancelled, tracked)
            tracked.bytes_out = len(reply)
            return reply

    def _process(self, raw: bytes, cancelled: threading.Event, tracked: Tracked | None = None) -> bytes:
        try:
            request = inference_pb2.ProcessRequest.FromString(raw)
        except DecodeError as error:
            raise FrameError(f"a ProcessRequest does not parse: {error}") from None
        check_text_fields(request, "ProcessRequest")
        if shm.uses_shm(request):
            if tracked is not None:
                tracked.transport = "shm"
            return self._process_shm(request, cancelled, tracked).SerializeToString()
        result = self.run(codec.decode_call(request), cancelled, tracked=tracked)
        return codec.encode_result(result).SerializeToString()

    def _process_shm(
        self, request: inference_pb2.ProcessRequest, cancelled: threading.Event, tracked: Tracked | None = None
    ) -> inference_pb2.ProcessResponse:
        if self.shm_regions is None:
            raise SharedMemoryError("this server takes no shared-memory references; send bytes")
        model, targets = self._inspect_header(request)
        if tracked is not None:
            tracked.model = model.info.name
        call = shm.decode_call(self.shm_regions, request, targets[0] if targets else None)
        return shm.encode_result(self.shm_regions, request, self.run(call, cancelled, model))

    async def ProcessStream(self, messages: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        # Messages arrive and leave serialised: the codec reads and writes their chunks without
        # protobuf's copies (plateforge.chunkwire); the bytes are the .proto's wire format.
        cancelled = _cancel_event(context)
        with self.metrics.request("stream") as tracked:
            model, call = await self._gather(messages, tracked)
            try:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self.compute, self.run, call, cancelled, model)
            finally:
                # gRPC keeps a failed or cancelled handler's error, whose traceback holds this frame:
                # without this the frame's pixels would live as long as that error.
                del call, model
            for message in streams.stream_result(result):
                tracked.bytes_out += len(message)
                yield message

    async def _gather(self, messages: AsyncIterator[bytes], tracked: Tracked) -> tuple[LoadedModel, ProcessCall]:
        """The stream's model, resolved once from its header, and its call, assembled on the
        event loop as its messages arrive.

        Each chunk costs the loop one copy into the frame's buffer and a NaN/Inf scan (well under
        a millisecond for a 2 MiB chunk; the provenance hash runs on a thread of its own), which
        every other call can afford to wait; handing chunks to a thread instead cost two thread
        wake-ups a chunk and made a 4K round trip ~15 % slower. Building the call at the end (the
        gap check, waiting for the hash) runs on the ``receive`` executor.
        """
        iterator = aiter(messages)
        try:
            first = await anext(iterator)
            tracked.bytes_in += len(first)
        except StopAsyncIteration:
            raise FrameError("a ProcessStream request must start with its header; the stream was empty") from None
        resolved: list[LoadedModel] = []

        def inspect(header: inference_pb2.ProcessRequest) -> list[tuple[int, int]]:
            model, targets = self._inspect_stream_header(header)
            tracked.model = model.info.name
            resolved.append(model)
            return targets

        gatherer = streams.CallGatherer(first, max_bytes=self.max_request_bytes, inspect_header=inspect)
        del first
        try:
            async for message in iterator:
                tracked.bytes_in += len(message)
                gatherer.add(message)
            call = await asyncio.get_running_loop().run_in_executor(self.receive, gatherer.call)
            return resolved[0], call
        except BaseException as error:
            # Idle, cancelled or broken: nothing here may keep what was gathered alive (see
            # ProcessStream), and the error must not carry this frame's traceback.
            log.info("a ProcessStream failed while it was received (%s)", type(error).__name__)
            # gRPC keeps the error, and its traceback's frames would keep the buffers.
            raise error.with_traceback(None) from None
        finally:
            gatherer.close()
            del gatherer

    def _inspect_stream_header(self, header: inference_pb2.ProcessRequest) -> tuple[LoadedModel, list[tuple[int, int]]]:
        check_text_fields(header, "ProcessStreamRequest.header")
        if shm.uses_shm(header):
            raise FrameError("ProcessStream carries samples as DataChunks; shared-memory references go through Process")
        return self._inspect_header(header)

    def _inspect_header(self, header: inference_pb2.ProcessRequest) -> tuple[LoadedModel, list[tuple[int, int]]]:
        """Resolve the model (once for the whole request: the header's name and version then
        mean the same model from the first pixel to the result, whatever is published meanwhile)
        and refuse what can be refused before any pixel arrives (an unknown model, an oversized
        frame); name the image whose hash goes into the provenance record: the model's first
        input at the target frame, hashed while it arrives."""
        model = self.registry.get(header.model, header.version)
        info = model.info
        for given in header.inputs:
            for frame in given.frames:
                box = frame.data_window
                suffix = f" frame {frame.frame_number}" if frame.HasField("frame_number") else ""
                what = f"input {given.name!r}{suffix}"
                check_frame_size(what, box.max_x - box.min_x + 1, box.max_y - box.min_y + 1, self.max_frame_pixels)
        primary = info.inputs[0].name if info.inputs else None
        target = header.target_frame if header.HasField("target_frame") else None
        for i, given in enumerate(header.inputs):
            if given.name != primary:
                continue
            for j, frame in enumerate(given.frames):
                number = frame.frame_number if frame.HasField("frame_number") else None
                if len(given.frames) == 1 or number == target:
                    return model, [(i, j)]
        return model, []

    def run(
        self,
        call: ProcessCall,
        cancelled: threading.Event,
        model: LoadedModel | None = None,
        *,
        tracked: Tracked | None = None,
    ) -> ProcessResult:
        """Run ``call`` (on a compute thread) with ``model``, or the model it names when the
        request's header has not resolved one; its tool stops early once ``cancelled`` is set."""
        if model is None:
            model = self.registry.get(call.model, call.version)
            if tracked is not None:  # only a served name: a caller's made-up names make no labels
                tracked.model = model.info.name
        tool_call = check_call(model.info, call, max_frame_pixels=self.max_frame_pixels, cancelled=cancelled)
        started = time.perf_counter()
        outputs = model.tool.run(model.state, tool_call)
        elapsed = time.perf_counter() - started
        log.info("%s frame %s in %.3f s", model.info.name, tool_call.target_frame, elapsed)

        primary = model.info.inputs[0].name
        source = tool_call.frame(primary)
        provenance = record(
            model=model.info.name,
            modelVersion=model.info.version,
            modelHash=model.model_hash,
            tool=model.info.tool,
            params=tool_call.params,
            modelProvenance=model.info.provenance,
            sourcePixelsDigest=tool_call.digests.get((primary, source.frame_number)) or pixels_digest(source),
            frame=tool_call.target_frame if tool_call.target_frame is not None else "",
            server=f"plateforge {__version__}",
        )
        finished = {}
        for name, frame in outputs.items():
            # Outputs carry the source frame's number and metadata, and the provenance record.
            frame = frame.replace(
                frame_number=source.frame_number,
                attributes={**source.attributes, **frame.attributes, **provenance},
            )
            finished[name] = frame
        return ProcessResult(outputs=finished, provenance=provenance)


#: Methods whose messages arrive and leave serialised (see their handlers), so their handlers drop
#: the protobuf (de)serialisers the generated table gives them.
_SERIALISED = frozenset({"Process", "ProcessStream"})
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # the stubs make it generic; grpc does not


class _Table:
    """Stands in for the server while the generated ``add_InferenceServicer_to_server`` registers,
    keeping the method table it builds from the .proto (names and message types never repeated here)."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, _Handler] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same table, registered by add_to_server once adjusted

    def add_registered_method_handlers(self, service: str, handlers: dict[str, _Handler]) -> None:
        self.service, self.handlers = service, dict(handlers)


def add_to_server(service: InferenceService, server: aio.Server) -> None:
    """Register ``service`` as plateforge.v1.Inference through the generated stub's method table.
    ListModels uses protobuf's (de)serialisers; Process and ProcessStream take and give serialised
    messages (chunkwire's copy-free path; see their handlers)."""
    table = _Table()
    inference_pb2_grpc.add_InferenceServicer_to_server(service, table)  # type: ignore[no-untyped-call]
    handlers = {
        name: handler._replace(request_deserializer=None, response_serializer=None)  # type: ignore[attr-defined]
        if name in _SERIALISED
        else handler
        for name, handler in table.handlers.items()
    }
    missing = sorted(_SERIALISED - set(handlers))
    if missing:  # the .proto renamed a method these handlers serve
        raise RuntimeError(f"plateforge.v1.Inference lacks {missing}; the generated table has {sorted(handlers)}")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(table.service, handlers),))
