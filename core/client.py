"""The client hosts and the CLI use to talk to a plateforge server.

``Client`` finds the server from its argument or ``PLATEFORGE_SERVER`` and the token from its
argument or ``PLATEFORGE_TOKEN``. Every call has a deadline; calls that fail with UNAVAILABLE (the
server restarting, a dropped connection) are retried with exponential backoff, because every
call here is safe to repeat. Status codes come back as the same :class:`PlateforgeError`
subclass the server raised.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plateforge import codec, errors, streams
from plateforge.calls import MAX_MESSAGE_BYTES, UNARY_LIMIT_BYTES, ProcessCall, ProcessResult
from plateforge.errors import ERROR_CLASS_KEY, PlateforgeError, ServerUnavailableError, UsageError
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ParamValue
from plateforge.v1 import inference_pb2, inference_pb2_grpc

__all__ = ["Client", "Transport", "server_address", "server_tls_ca", "server_token", "translate_rpc_error"]

Transport = Literal["auto", "unary", "stream"]
T = TypeVar("T")

_PROCESS_STREAM = "/plateforge.v1.Inference/ProcessStream"
ENV_SERVER = "PLATEFORGE_SERVER"
ENV_TOKEN = "PLATEFORGE_TOKEN"
ENV_TLS_CA = "PLATEFORGE_TLS_CA"

_CODE_TO_ERROR: dict[grpc.StatusCode, type[PlateforgeError]] = {
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthError,
    grpc.StatusCode.NOT_FOUND: errors.UnknownModelError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.FrameError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.FrameTooLargeError,
    grpc.StatusCode.UNAVAILABLE: errors.ServerUnavailableError,
    grpc.StatusCode.CANCELLED: errors.CancelledError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineError,
}


def server_address(given: str | None = None) -> str | None:
    return given or os.environ.get(ENV_SERVER) or None


def server_token(given: str | None = None) -> str | None:
    return given or os.environ.get(ENV_TOKEN) or None


def server_tls_ca(given: str | None = None) -> bytes | None:
    """The PEM CA certificate to trust, from ``given`` or ``PLATEFORGE_TLS_CA``; None: plaintext."""
    path = given or os.environ.get(ENV_TLS_CA)
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise UsageError(f"cannot read the TLS CA certificate {path}: {error.strerror}") from None


def translate_rpc_error(error: grpc.RpcError, address: str) -> PlateforgeError:
    """The PlateforgeError a failed call stands for: the class the server named, else by status code."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    cls: type[PlateforgeError] = _CODE_TO_ERROR.get(code, PlateforgeError)
    if isinstance(error, grpc.Call):
        named = dict(error.trailing_metadata() or ()).get(ERROR_CLASS_KEY)
        candidate = getattr(errors, str(named), None) if named else None
        if isinstance(candidate, type) and issubclass(candidate, PlateforgeError):
            cls = candidate
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"server {address} unavailable: {details}"
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message" in details.lower():
        details = f"{details} (frames this large must go through ProcessStream; use transport='stream')"
    return cls(details)


class Client:
    """A connection to one plateforge server. Use as a context manager, or call close()."""

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        retries: int = 4,
        backoff: float = 0.25,
        root_certificates: bytes | None = None,
    ) -> None:
        resolved = server_address(address)
        if not resolved:
            raise UsageError(f"no server address: pass one, or set {ENV_SERVER}=HOST:PORT")
        self.address = resolved
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        token = server_token(token)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if root_certificates is None:
            root_certificates = server_tls_ca()
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(resolved, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(resolved, options=options)
        self._stub = inference_pb2_grpc.InferenceStub(self._channel)  # type: ignore[no-untyped-call]
        # ProcessStream messages go out and come back serialised: the codec writes and reads
        # their chunks without protobuf's copies (plateforge.chunkwire), in the .proto's format.
        self._process_stream = self._channel.stream_stream(_PROCESS_STREAM, None, None)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel, for clients of other plateforge services (training jobs)."""
        return self._channel

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the bearer token, when there is one."""
        return self._metadata

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------

    def call_with_retries(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried with backoff on UNAVAILABLE; failures as PlateforgeError subclasses."""
        attempt = 0
        while True:
            try:
                return fn()
            except grpc.RpcError as error:
                if not self.pause_before_retry(error, attempt):
                    raise translate_rpc_error(error, self.address) from None
                attempt += 1

    def pause_before_retry(self, error: grpc.RpcError, attempt: int) -> bool:
        """Whether failed try number ``attempt`` (from 0) is worth another: only UNAVAILABLE,
        at most ``retries`` times. If so, first sleeps ``backoff * 2**attempt`` plus jitter."""
        code = error.code() if isinstance(error, grpc.Call) else None
        if code != grpc.StatusCode.UNAVAILABLE or attempt >= self.retries:
            return False
        time.sleep(self.backoff * 2**attempt * (1 + random.random() * 0.25))
        return True

    def health(self, *, timeout: float = 5.0) -> bool:
        """True when the server answers SERVING to the standard gRPC health check."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until the server is healthy, or raise ServerUnavailableError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health(timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                return
            time.sleep(0.1)
        raise ServerUnavailableError(f"server {self.address} did not become ready within {timeout:.0f} s")

    def list_models(self) -> list[ModelInfo]:
        reply = self.call_with_retries(
            lambda: self._stub.ListModels(
                inference_pb2.ListModelsRequest(), timeout=self.timeout, metadata=self._metadata
            )
        )
        return [codec.info_from_proto(m) for m in reply.models]

    def model_info(self, name: str) -> ModelInfo:
        models = self.list_models()
        for info in models:
            if info.name == name:
                return info
        raise errors.UnknownModelError(f"no model {name!r} on {self.address}; it serves {[m.name for m in models]}")

    def process(
        self,
        model: str,
        inputs: Mapping[str, Frame | Sequence[Frame]],
        *,
        params: Mapping[str, ParamValue] | None = None,
        target_frame: int | None = None,
        sanitize_non_finite: bool = False,
        version: str = "",
        transport: Transport = "auto",
        timeout: float | None = None,
    ) -> ProcessResult:
        """Run ``model`` on one target frame. ``inputs`` maps input names to a frame or to the
        target frame and its neighbours. ``transport="auto"`` streams large frames."""
        call = ProcessCall(
            model=model,
            inputs={k: [v] if isinstance(v, Frame) else list(v) for k, v in inputs.items()},
            params=dict(params or {}),
            version=version,
            target_frame=target_frame,
            sanitize_non_finite=sanitize_non_finite,
        )
        return self.process_call(call, transport=transport, timeout=timeout)

    def process_call(
        self, call: ProcessCall, *, transport: Transport = "auto", timeout: float | None = None
    ) -> ProcessResult:
        deadline = self.timeout if timeout is None else timeout
        if transport == "unary" or (transport == "auto" and call.nbytes <= UNARY_LIMIT_BYTES):
            request = codec.encode_call(call)
            reply = self.call_with_retries(
                lambda: self._stub.Process(request, timeout=deadline, metadata=self._metadata)
            )
            return codec.decode_result(reply)

        def streamed() -> ProcessResult:
            replies = self._process_stream(streams.stream_call(call), timeout=deadline, metadata=self._metadata)
            return streams.gather_result(iter(replies))

        return self.call_with_retries(streamed)

    def process_sequence(
        self, calls: Iterable[ProcessCall], *, in_flight: int = 2, transport: Transport = "auto"
    ) -> Iterator[ProcessResult]:
        """Results of ``calls`` in order, keeping ``in_flight`` requests going so the next frame
        travels while the server works on this one."""
        with ThreadPoolExecutor(max_workers=max(1, in_flight)) as pool:
            pending: list[Future[ProcessResult]] = []
            try:
                for call in calls:
                    pending.append(pool.submit(self.process_call, call, transport=transport))
                    if len(pending) >= in_flight:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:
                for future in pending:
                    future.cancel()
