"""One error hierarchy for plateforge.

Every failure a user can cause (bad file, bad parameter, missing token, a server that went
away) is a subclass of :class:`PlateforgeError` with a message that says what was expected and
what was found. Library errors (OpenEXR, grpc, numpy) are caught at the boundary and re-raised
as one of these; the server maps them to gRPC status codes in one interceptor, and the client
maps status codes back, so the same class reaches the caller on either side of the wire.
"""

from __future__ import annotations

__all__ = [
    "ERROR_CLASS_KEY",
    "AuthError",
    "CancelledError",
    "ColourError",
    "DeadlineError",
    "ExrError",
    "FrameError",
    "FrameTooLargeError",
    "JobStateError",
    "LicenceError",
    "LineageIndexError",
    "ManifestError",
    "ModelIntegrityError",
    "NonFiniteError",
    "ParameterError",
    "PathNotAllowedError",
    "PlateforgeError",
    "QueueFullError",
    "ServerUnavailableError",
    "SharedMemoryError",
    "SigningError",
    "UnknownJobError",
    "UnknownModelError",
    "UsageError",
]

#: Trailing-metadata key in which the server names the error class, so the client can raise it.
ERROR_CLASS_KEY = "plateforge-error"


class PlateforgeError(Exception):
    """Base class of every error plateforge raises on purpose."""

    #: gRPC status code name used when this error crosses the wire (see the server interceptor).
    grpc_code = "INTERNAL"


class UsageError(PlateforgeError):
    """A command line or call that cannot be right (bad frame range, bad pattern)."""

    grpc_code = "INVALID_ARGUMENT"


class ExrError(PlateforgeError):
    """An EXR file could not be read or written; the message names the file and the reason."""

    grpc_code = "INVALID_ARGUMENT"


class FrameError(PlateforgeError):
    """A frame is not what the model or operation needs (channels, windows, sizes, dtypes)."""

    grpc_code = "INVALID_ARGUMENT"


class NonFiniteError(FrameError):
    """A frame holds NaN or Inf where the caller did not ask for sanitising."""


class FrameTooLargeError(FrameError):
    """A frame is larger than the server's configured limits."""

    grpc_code = "RESOURCE_EXHAUSTED"


class UnknownModelError(PlateforgeError):
    """The requested model is not served; the message lists the models that are."""

    grpc_code = "NOT_FOUND"


class ParameterError(PlateforgeError):
    """A parameter is unknown, of the wrong type or out of its declared range."""

    grpc_code = "INVALID_ARGUMENT"


class AuthError(PlateforgeError):
    """The call carried no token or the wrong one."""

    grpc_code = "UNAUTHENTICATED"


class ServerUnavailableError(PlateforgeError):
    """The server could not be reached, or went away, after the configured retries."""

    grpc_code = "UNAVAILABLE"

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        #: The server that could not be reached, when known (plateforge.messages names it).
        self.address = address


class PathNotAllowedError(PlateforgeError):
    """A request names a file outside the folders the server was told it may read (--data-root)."""

    grpc_code = "PERMISSION_DENIED"


class SharedMemoryError(PlateforgeError):
    """Same-host shared memory cannot carry this call: the region is not on the server's machine,
    not readable by it, or unknown to it (it restarted). Clients fall back to sending bytes."""

    grpc_code = "FAILED_PRECONDITION"


class CancelledError(PlateforgeError):
    """The operation was cancelled by the caller."""

    grpc_code = "CANCELLED"


class DeadlineError(PlateforgeError):
    """The operation did not finish within its deadline."""

    grpc_code = "DEADLINE_EXCEEDED"


class ManifestError(PlateforgeError):
    """A dataset manifest cannot be read or is not valid (unknown schema, key or permitted use, a
    glob that matches nothing); the message names the manifest and, where there is one, the source."""

    grpc_code = "INVALID_ARGUMENT"


class LicenceError(PlateforgeError):
    """Material may not be used as asked: no licence, a licence that does not permit the use, or a
    file that is missing or no longer the one registered. The message names every such file."""

    grpc_code = "PERMISSION_DENIED"


class LineageIndexError(PlateforgeError):
    """The lineage index (``plateforge lineage``) cannot be used: a database that cannot be opened
    or reached, a schema version this release does not know, or a driver that is not installed.
    The message names the database (never its password)."""

    grpc_code = "FAILED_PRECONDITION"


class ModelIntegrityError(PlateforgeError):
    """A saved model is not what its card says: weights missing, damaged or changed since they
    were saved, a card that disagrees with the weights, or a card schema this version does not
    know. The message names the file."""

    grpc_code = "FAILED_PRECONDITION"


class UnknownJobError(PlateforgeError):
    """No training job with that id on the server."""

    grpc_code = "NOT_FOUND"


class JobStateError(PlateforgeError):
    """The job is in a state that cannot do what was asked (resume a running job, start while
    the server shuts down)."""

    grpc_code = "FAILED_PRECONDITION"


class QueueFullError(JobStateError):
    """The server's training queue is full; start (or resume) the job once others have finished."""

    grpc_code = "RESOURCE_EXHAUSTED"


class ColourError(PlateforgeError):
    """A colour transform cannot be made: an OpenColorIO config that does not load, a colour space,
    display or view it does not define, or a plate that needs a colour space and was given none."""

    grpc_code = "INVALID_ARGUMENT"


class SigningError(PlateforgeError):
    """Review media cannot be signed or its C2PA manifest read: a certificate chain or key the
    C2PA library refuses, or a file it cannot sign. The message names the file and the reason."""

    grpc_code = "FAILED_PRECONDITION"
