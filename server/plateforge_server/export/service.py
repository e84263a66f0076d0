"""The plateforge.v1.Export service: ExportModel.

The handler is a plain function, so the interceptor runs it on the blocking executor (tracing a
net takes seconds); it resolves the model as every call does (name, optional version), exports
it from its folder and answers with every file. Errors are PlateforgeError subclasses, mapped to
status codes by the interceptor.
"""

from __future__ import annotations

from typing import Any, Final

import grpc

from plateforge.errors import UsageError
from plateforge.v1 import export_pb2, export_pb2_grpc
from plateforge_server.registry import Registry

__all__ = ["EXPORT_SERVICE_NAME", "ExportService", "add_export_service"]

EXPORT_SERVICE_NAME: Final = export_pb2.DESCRIPTOR.services_by_name["Export"].full_name

_FORMATS: Final = {
    export_pb2.ExportModelRequest.FORMAT_ONNX: "onnx",
    export_pb2.ExportModelRequest.FORMAT_TORCHSCRIPT: "torchscript",
    export_pb2.ExportModelRequest.FORMAT_FLAME: "flame",
    export_pb2.ExportModelRequest.FORMAT_NUKE: "nuke",
}


class ExportService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def ExportModel(
        self, request: export_pb2.ExportModelRequest, context: grpc.ServicerContext
    ) -> export_pb2.ExportModelResponse:
        fmt = _FORMATS.get(request.format)
        if fmt is None:
            raise UsageError(f"ExportModelRequest.format {request.format} is not one of {sorted(_FORMATS.values())}")
        with self.registry.use(request.model, request.version) as model:
            if model.folder is None:
                raise UsageError(
                    f"model {model.info.name}@{model.info.version} is a built-in tool; only trained models export"
                )
            folder = model.folder
        from plateforge_server.export.build import export_model  # torch and onnx: only when asked

        done = export_model(folder, fmt=fmt)
        return export_pb2.ExportModelResponse(
            model=done.model,
            model_hash=done.model_hash,
            files=[export_pb2.ExportedFile(name=name, data=data) for name, data in done.files.items()],
        )


def add_export_service(server: Any, registry: Registry) -> None:
    """Register the Export service for ``registry``'s models on ``server``."""
    export_pb2_grpc.add_ExportServicer_to_server(ExportService(registry), server)  # type: ignore[no-untyped-call]
