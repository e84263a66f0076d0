"""The plateforge.v1.Inference service: ListModels, Process and ProcessStream.

Handlers only translate: decode the request (codec), check it (checks), run the tool, encode
the result. Errors are PlateforgeError subclasses; the interceptor turns them into status codes.
A cancelled or abandoned call sets an Event the tool polls, so its work stops early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc

from plateforge import __version__, codec, streams
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.errors import FrameError, SharedMemoryError
from plateforge.provenance import pixels_digest, record
from plateforge.server import shm
from plateforge.server.checks import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_REQUEST_BYTES, check_call, check_frame_size
from plateforge.server.registry import Registry
from plateforge.v1 import inference_pb2

__all__ = ["SERVICE_NAME", "InferenceService", "add_to_server"]

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name

log = logging.getLogger("plateforge.server")


class InferenceService:
    def __init__(
        self,
        registry: Registry,
        *,
        max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.registry = registry
        self.max_frame_pixels = max_frame_pixels
        self.max_request_bytes = max_request_bytes
        #: Same-host shared-memory regions (server/shm.py); None: Process refuses references.
        self.shm_regions: shm.RegionTable | None = None

    def ListModels(
        self, request: inference_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> inference_pb2.ListModelsResponse:
        return inference_pb2.ListModelsResponse(models=[codec.info_to_proto(i) for i in self.registry.infos()])

    def Process(
        self, request: inference_pb2.ProcessRequest, context: grpc.ServicerContext
    ) -> inference_pb2.ProcessResponse:
        if shm.uses_shm(request):
            return self._process_shm(request, context)
        result = self.run(codec.decode_call(request), context)
        return codec.encode_result(result)

    def _process_shm(
        self, request: inference_pb2.ProcessRequest, context: grpc.ServicerContext
    ) -> inference_pb2.ProcessResponse:
        if self.shm_regions is None:
            raise SharedMemoryError("this server takes no shared-memory references; send bytes")
        targets = self._inspect_header(request)
        call = shm.decode_call(self.shm_regions, request, targets[0] if targets else None)
        return shm.encode_result(self.shm_regions, request, self.run(call, context))

    def ProcessStream(self, request_iterator: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        # Messages arrive and leave serialised: the codec reads and writes their chunks without
        # protobuf's copies (plateforge.chunkwire); the bytes are the .proto's wire format.
        call = streams.gather_call(
            request_iterator, max_bytes=self.max_request_bytes, inspect_header=self._inspect_stream_header
        )
        yield from streams.stream_result(self.run(call, context))

    def _inspect_stream_header(self, header: inference_pb2.ProcessRequest) -> list[tuple[int, int]]:
        if shm.uses_shm(header):
            raise FrameError("ProcessStream carries samples as DataChunks; shared-memory references go through Process")
        return self._inspect_header(header)

    def _inspect_header(self, header: inference_pb2.ProcessRequest) -> list[tuple[int, int]]:
        """Refuse what can be refused before any pixel arrives (an unknown model, an oversized
        frame), and name the image whose hash goes into the provenance record: the model's first
        input at the target frame, hashed while it arrives."""
        info = self.registry.get(header.model, header.version).info
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
                    return [(i, j)]
        return []

    def run(self, call: ProcessCall, context: grpc.ServicerContext) -> ProcessResult:
        model = self.registry.get(call.model, call.version)
        cancelled = threading.Event()
        context.add_callback(cancelled.set)
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


def add_to_server(service: InferenceService, server: grpc.Server) -> None:
    """Register ``service`` as plateforge.v1.Inference. ListModels and Process use protobuf's
    (de)serialisers; ProcessStream takes and yields serialised messages (see its handler)."""
    handlers = {
        "ListModels": grpc.unary_unary_rpc_method_handler(
            service.ListModels,
            request_deserializer=inference_pb2.ListModelsRequest.FromString,
            response_serializer=inference_pb2.ListModelsResponse.SerializeToString,
        ),
        "Process": grpc.unary_unary_rpc_method_handler(
            service.Process,
            request_deserializer=inference_pb2.ProcessRequest.FromString,
            response_serializer=inference_pb2.ProcessResponse.SerializeToString,
        ),
        "ProcessStream": grpc.stream_stream_rpc_method_handler(service.ProcessStream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
