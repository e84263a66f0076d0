"""plateforge: project-tuned ML tools for compositors (host side; imports without torch).

The public names are re-exported here; everything else is private by default.

Processing a shot from Python reads each frame's neighbours from disk, as the CLI does (a
temporal model given one frame is refused by ``Client.process``)::

    from plateforge import Client, SequenceJob, parse_frames, run_batch

    with Client("127.0.0.1:50061", token="...") as client:
        report = run_batch(client, SequenceJob(
            model="cleanup-classical",                  # or NAME@VERSION, as `plateforge models` lists
            inputs={"plate": "plate.####.exr", "mask": "mask.####.exr"},
            frames=parse_frames("1001-1100"),
            outputs={"image": "clean.####.exr"},
        ))
    print(report.status, len(report.written))
"""

from typing import TYPE_CHECKING

from plateforge.calls import ProcessCall, ProcessResult
from plateforge.errors import (
    AuthError,
    CancelledError,
    DeadlineError,
    ExrError,
    FrameError,
    FrameTooLargeError,
    NonFiniteError,
    ParameterError,
    PlateforgeError,
    ServerUnavailableError,
    UnknownModelError,
    UsageError,
)
from plateforge.frames import Box, Frame
from plateforge.models import InputSpec, ModelInfo, ModelRef, OutputSpec, ParamSpec, parse_model_ref
from plateforge.sequences import parse_frames

if TYPE_CHECKING:  # imported on first use (below): they pull in grpc
    from plateforge.batch import BatchReport, FrameFailure, SequenceJob, run_batch, run_sequence
    from plateforge.client import Client

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BatchReport",
    "Box",
    "CancelledError",
    "Client",
    "DeadlineError",
    "ExrError",
    "Frame",
    "FrameError",
    "FrameFailure",
    "FrameTooLargeError",
    "InputSpec",
    "ModelInfo",
    "ModelRef",
    "NonFiniteError",
    "OutputSpec",
    "ParamSpec",
    "ParameterError",
    "PlateforgeError",
    "ProcessCall",
    "ProcessResult",
    "SequenceJob",
    "ServerUnavailableError",
    "UnknownModelError",
    "UsageError",
    "__version__",
    "parse_frames",
    "parse_model_ref",
    "run_batch",
    "run_sequence",
]

#: Public names whose modules import grpc, loaded on first use.
_LAZY = {
    "Client": "plateforge.client",
    "BatchReport": "plateforge.batch",
    "FrameFailure": "plateforge.batch",
    "SequenceJob": "plateforge.batch",
    "run_batch": "plateforge.batch",
    "run_sequence": "plateforge.batch",
}


def __getattr__(name: str) -> object:
    # The client pulls in grpc; keep `import plateforge` cheap for code that only reads EXRs.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plateforge' has no attribute {name!r}")
