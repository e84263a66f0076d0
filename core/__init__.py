"""plateforge: project-tuned ML tools for compositors (host side; imports without torch).

The public names are re-exported here; everything else is private by default.
"""

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
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Box",
    "CancelledError",
    "DeadlineError",
    "ExrError",
    "Frame",
    "FrameError",
    "FrameTooLargeError",
    "InputSpec",
    "ModelInfo",
    "NonFiniteError",
    "OutputSpec",
    "ParamSpec",
    "ParameterError",
    "PlateforgeError",
    "ProcessCall",
    "ProcessResult",
    "ServerUnavailableError",
    "UnknownModelError",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> object:
    # The client pulls in grpc; keep `import plateforge` cheap for code that only reads EXRs.
    if name == "Client":
        from plateforge.client import Client

        return Client
    raise AttributeError(f"module 'plateforge' has no attribute {name!r}")
