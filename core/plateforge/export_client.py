"""The Export service through a connected :class:`~plateforge.client.Client`: ask the server to
export a model, get every file of the export back (nothing is written here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from plateforge.client import Client
from plateforge.errors import UsageError
from plateforge.v1 import export_pb2, export_pb2_grpc

__all__ = ["EXPORT_FORMATS", "ExportedModel", "export_model"]

#: Format name -> the wire enum.
EXPORT_FORMATS: Final = {
    "onnx": export_pb2.ExportModelRequest.FORMAT_ONNX,
    "torchscript": export_pb2.ExportModelRequest.FORMAT_TORCHSCRIPT,
    "flame": export_pb2.ExportModelRequest.FORMAT_FLAME,
    "nuke": export_pb2.ExportModelRequest.FORMAT_NUKE,
}


@dataclass(frozen=True)
class ExportedModel:
    """What the server exported: NAME@VERSION, the weights' sha256, and file name -> bytes."""

    model: str
    model_hash: str
    files: dict[str, bytes]


def export_model(client: Client, *, name: str, version: str, fmt: str) -> ExportedModel:
    """Ask the server behind ``client`` to export ``name`` (``version``, or its newest) as ``fmt``."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
    stub = export_pb2_grpc.ExportStub(client.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.ExportModelRequest(model=name, version=version, format=EXPORT_FORMATS[fmt])
    response = client.call_with_retries(
        lambda: stub.ExportModel(request, metadata=client.metadata, timeout=client.timeout)
    )
    files = {f.name: f.data for f in response.files}
    for file_name in files:
        if not file_name or "/" in file_name or "\\" in file_name or file_name in (".", ".."):
            raise UsageError(f"the server answered an export file named {file_name!r}; a plain file name was expected")
    return ExportedModel(model=response.model, model_hash=response.model_hash, files=files)
