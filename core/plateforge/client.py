"""The client hosts and the CLI use to talk to a plateforge server.

``Client`` finds the server from its argument or ``PLATEFORGE_SERVER`` and the token from its
argument or ``PLATEFORGE_TOKEN``. Every call has a deadline; calls that fail with UNAVAILABLE (the
server restarting, a dropped connection) are retried with exponential backoff, because every
call here is safe to repeat. Status codes come back as the same :class:`PlateforgeError`
subclass the server raised.

Several servers (``"host1:50061,host2:50061"`` or a list) make one channel over all of them:
gRPC's own ``round_robin`` load balancing spreads calls across the servers that are up, and its
retry policy (from the channel's service config) sends a call that found a server gone to
another one; the client's own retries above come on top, for calls too large for gRPC to replay.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plateforge import codec, errors, shm, streams
from plateforge.addresses import check_address, resolve
from plateforge.calls import MAX_MESSAGE_BYTES, UNARY_LIMIT_BYTES, Precision, ProcessCall, ProcessResult
from plateforge.errors import ERROR_CLASS_KEY, PlateforgeError, ServerUnavailableError, UsageError
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ModelRef, ParamValue, parse_model_ref, resolve_params, select_model
from plateforge.v1 import inference_pb2, inference_pb2_grpc

__all__ = [
    "Client",
    "Transport",
    "channel_target",
    "server_address",
    "server_tls_ca",
    "server_token",
    "split_addresses",
    "translate_rpc_error",
]

Transport = Literal["auto", "unary", "stream", "shm"]
T = TypeVar("T")

ENV_SERVER = "PLATEFORGE_SERVER"
ENV_TOKEN = "PLATEFORGE_TOKEN"
ENV_TLS_CA = "PLATEFORGE_TLS_CA"

class _Serialised:
    """Stands in for the channel while the generated ``InferenceStub`` builds its callables, so the
    method names come from the .proto (never repeated here) and each callable takes and gives
    serialised messages: the (de)serialisers the stub passes are dropped, as the server's
    ``add_to_server`` drops them for the same methods."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    @staticmethod
    def _without_serialisers(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k not in ("request_serializer", "response_deserializer")}

    def unary_unary(self, method: str, **kwargs: Any) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
        return self._channel.unary_unary(method, **self._without_serialisers(kwargs))

    def unary_stream(self, method: str, **kwargs: Any) -> grpc.UnaryStreamMultiCallable[bytes, bytes]:
        return self._channel.unary_stream(method, **self._without_serialisers(kwargs))

    def stream_unary(self, method: str, **kwargs: Any) -> grpc.StreamUnaryMultiCallable[bytes, bytes]:
        return self._channel.stream_unary(method, **self._without_serialisers(kwargs))

    def stream_stream(self, method: str, **kwargs: Any) -> grpc.StreamStreamMultiCallable[bytes, bytes]:
        return self._channel.stream_stream(method, **self._without_serialisers(kwargs))


def _serialised_stub(channel: grpc.Channel) -> inference_pb2_grpc.InferenceStub:
    """The generated Inference stub over ``channel``, its callables sending and receiving bytes."""
    return inference_pb2_grpc.InferenceStub(_Serialised(channel))  # type: ignore[no-untyped-call]


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


#: For several servers: round_robin over all of them, and gRPC's retries of a call that found its
#: server gone (UNAVAILABLE) on another one. Health is listed so wait_ready fails over too.
_MULTI_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "plateforge.v1.Inference"}, {"service": "grpc.health.v1.Health"}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


#: Bytes of each request gRPC keeps to replay it on another server (its default is 256 KiB).
_RETRY_BUFFER_BYTES = 64 * 1024 * 1024


def split_addresses(address: str | Sequence[str]) -> list[str]:
    """The ``HOST:PORT`` entries of ``"a:1,b:2"`` or of a list, in order, without repeats."""
    items = [address] if isinstance(address, str) else list(address)
    parts = [p.strip() for item in items for p in item.split(",") if p.strip()]
    return list(dict.fromkeys(parts))


def channel_target(addresses: Sequence[str]) -> str:
    """The gRPC target for ``addresses``: the address itself for one server, else an ``ipv4:`` (or
    ``ipv6:``) list of every server's resolved address, which gRPC balances over by itself. An
    address written wrong (a URL, no port) or naming no host is a UsageError saying so, now."""
    endpoints = [check_address(address) for address in addresses]
    if len(addresses) == 1:
        if endpoints[0] is not None:
            resolve(endpoints[0])  # an unknown host is refused here, not after a connection timeout
        return addresses[0]
    v4: list[str] = []
    v6: list[str] = []
    for address, endpoint in zip(addresses, endpoints, strict=True):
        if endpoint is None:
            raise UsageError(f"server address {address!r}: write each of several servers as HOST:PORT")
        for family, found in resolve(endpoint):
            ip = ipaddress.ip_address(found.partition("%")[0])
            if family == socket.AF_INET:
                v4.append(f"{ip}:{endpoint.port}")
            elif family == socket.AF_INET6:
                v6.append(f"[{ip}]:{endpoint.port}")
    if v4:
        return "ipv4:" + ",".join(dict.fromkeys(v4))
    if v6:
        return "ipv6:" + ",".join(dict.fromkeys(v6))
    raise UsageError(f"server addresses {','.join(addresses)}: none of the hosts could be looked up in time")


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
        return ServerUnavailableError(f"server {address} unavailable: {details}", address=address)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message" in details.lower():
        details = f"{details} (frames this large must go through ProcessStream; use transport='stream')"
    return cls(details)


class Client:
    """A connection to a plateforge server, or to several (``"a:1,b:2"`` or a list), over which
    gRPC balances the calls. Use as a context manager, or call close()."""

    def __init__(
        self,
        address: str | Sequence[str] | None = None,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        retries: int = 4,
        backoff: float = 0.25,
        root_certificates: bytes | None = None,
    ) -> None:
        given = address if address is None or isinstance(address, str) else ",".join(address)
        resolved = server_address(given)
        if not resolved:
            raise UsageError(f"no server address: pass one, or set {ENV_SERVER}=HOST:PORT")
        #: Every server this client balances over (one for the usual single server).
        self.addresses = split_addresses(resolved)
        if not self.addresses:
            raise UsageError(f"no server address in {resolved!r}: write HOST:PORT[,HOST:PORT...]")
        self.address = ",".join(self.addresses)
        target = channel_target(self.addresses)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        token = server_token(token)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options: list[tuple[str, str | int]] = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        # A DNS name with one record per server ("dns:///pool.farm:50061") is balanced the same way.
        if len(self.addresses) > 1 or self.addresses[0].startswith("dns:"):
            options += [
                ("grpc.service_config", json.dumps(_MULTI_SERVICE_CONFIG)),
                ("grpc.enable_retries", 1),
                # gRPC replays only what it kept of a request: keep up to an HD frame with neighbours.
                ("grpc.per_rpc_retry_buffer_size", _RETRY_BUFFER_BYTES),
            ]
        if root_certificates is None:
            root_certificates = server_tls_ca()
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            if len(self.addresses) > 1:
                # The target names IPs; the certificate names the hosts (one name for the pool).
                options.append(("grpc.ssl_target_name_override", self.addresses[0].rpartition(":")[0].strip("[]")))
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = inference_pb2_grpc.InferenceStub(self._channel)  # type: ignore[no-untyped-call]
        # ProcessStream messages go out and come back serialised: the codec writes and reads
        # their chunks without protobuf's copies (plateforge.chunkwire), in the .proto's format.
        self._process_stream = _serialised_stub(self._channel).ProcessStream
        self._health = health_pb2_grpc.HealthStub(self._channel)
        # Same-host shared memory (plateforge.shm): negotiated on first use, else bytes.
        self._shm = shm.SharedMemoryClient(self._channel, self._metadata, self.addresses)
        #: Model contracts Client.process has looked up, to refuse a temporal model one frame.
        self._contracts: dict[ModelRef, ModelInfo] = {}

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
        self._shm.close()
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

    def wait_ready(self, *, timeout: float = 30.0, connect_timeout: float | None = None) -> None:
        """Block until the server is healthy, or raise ServerUnavailableError. With
        ``connect_timeout``, give up at once when nothing accepts a connection (refused, or no
        answer within that many seconds), rather than waiting ``timeout`` for a server to appear."""
        if connect_timeout is not None:
            self._wait_connected(min(connect_timeout, timeout))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health(timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                return
            time.sleep(0.1)
        raise ServerUnavailableError(
            f"server {self.address} did not become ready within {timeout:.0f} s", address=self.address
        )

    def _wait_connected(self, timeout: float) -> None:
        """Return once the channel is connected; raise when its first try fails or ``timeout`` passes."""
        settled = threading.Event()
        states: list[grpc.ChannelConnectivity] = []

        def changed(state: grpc.ChannelConnectivity) -> None:
            states.append(state)
            if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
                settled.set()

        self._channel.subscribe(changed, try_to_connect=True)
        try:
            settled.wait(timeout)
        finally:
            self._channel.unsubscribe(changed)
        if states and states[-1] == grpc.ChannelConnectivity.READY:
            return
        if not settled.is_set():  # still trying: a host that drops packets, or a port that never speaks
            why = f"no connection within {timeout:g} s"
            raise ServerUnavailableError(f"server {self.address} unavailable: {why}", address=self.address)
        # The first try failed: gRPC's own account of why (refused, TLS handshake) for the details
        # line, from a call that fails at once on a channel in that state.
        try:
            self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
        except grpc.RpcError as error:
            why = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
            raise ServerUnavailableError(f"server {self.address} unavailable: {why}", address=self.address) from None

    def list_models(self) -> list[ModelInfo]:
        reply = self.call_with_retries(
            lambda: self._stub.ListModels(
                inference_pb2.ListModelsRequest(), timeout=self.timeout, metadata=self._metadata
            )
        )
        return [codec.info_from_proto(m) for m in reply.models]

    def model_info(self, model: str | ModelRef) -> ModelInfo:
        """The model a reference names (``NAME`` or ``NAME@VERSION``, as ``plateforge models``
        prints it): that version, or the newest; :class:`UnknownModelError` lists what is served."""
        return select_model(self.list_models(), model, where=self.address)

    def process(
        self,
        model: str | ModelRef,
        inputs: Mapping[str, Frame | Sequence[Frame]],
        *,
        params: Mapping[str, ParamValue] | None = None,
        target_frame: int | None = None,
        sanitize_non_finite: bool = False,
        version: str = "",
        precision: Precision = "auto",
        single_frame: bool = False,
        transport: Transport = "auto",
        timeout: float | None = None,
    ) -> ProcessResult:
        """Run ``model`` (``NAME`` or ``NAME@VERSION``) on one target frame. ``inputs`` maps input
        names to a frame or to the target frame and its neighbours (each with its frame number).

        A temporal model (one whose inputs read neighbouring frames) given no neighbours is refused
        with :class:`UsageError`: its result would be silently worse. Give the neighbours, process
        a frame range with :func:`plateforge.run_batch` (it reads them from disk), or pass
        ``single_frame=True`` to accept the one-frame result. ``precision="fp32"`` asks the server
        for float32 arithmetic even on a GPU. ``transport="auto"`` uses shared memory with a server
        on this machine (plateforge.shm), else streams large frames; ``"shm"`` insists on it.
        """
        ref = parse_model_ref(model) if isinstance(model, str) else model
        if version and ref.version and version != ref.version:
            raise UsageError(f"model {str(ref)!r} and version {version!r} disagree: give the version once")
        call = ProcessCall(
            model=ref.name,
            inputs={k: [v] if isinstance(v, Frame) else list(v) for k, v in inputs.items()},
            params=dict(params or {}),
            version=version or ref.version,
            target_frame=target_frame,
            sanitize_non_finite=sanitize_non_finite,
            precision=precision,
        )
        if not single_frame:
            self._refuse_without_neighbours(call)
        return self.process_call(call, transport=transport, timeout=timeout)

    def _refuse_without_neighbours(self, call: ProcessCall) -> None:
        """:class:`UsageError` when a temporal model would get no neighbouring frame at all."""
        if not any(len(frames) == 1 for frames in call.inputs.values()):
            return
        ref = ModelRef(call.model, call.version)
        info = self._contracts.get(ref)
        if info is None:  # one ListModels per model, not one per frame
            info = self._contracts[ref] = self.model_info(ref)
        resolve_params(info, call.params)  # a bad parameter is the first thing to say
        lonely = [
            spec for spec in info.inputs
            if spec.temporal_radius > 0 and len(call.inputs.get(spec.name, ())) == 1
        ]  # fmt: skip
        if not lonely:
            return
        radius = max(spec.temporal_radius for spec in lonely)
        names = ("inputs " if len(lonely) > 1 else "input ") + " and ".join(repr(spec.name) for spec in lonely)
        raise UsageError(
            f"model {info.name}@{info.version} reads up to {radius} neighbouring frame(s) on each side of the "
            f"target ({names}), and was given one frame: its result would be degraded. Process frames "
            "with their neighbours through plateforge.run_batch(client, plateforge.SequenceJob(...)), which "
            "reads them from disk, as `plateforge process` does; or give each temporal input a list of frames "
            "(target and neighbours, each with its frame_number); or pass single_frame=True to accept the "
            "one-frame result"
        )

    def process_call(
        self, call: ProcessCall, *, transport: Transport = "auto", timeout: float | None = None
    ) -> ProcessResult:
        deadline = self.timeout if timeout is None else timeout
        if transport == "shm" or (transport == "auto" and self._shm.unavailable is None):
            try:
                return self._shm.process(
                    call,
                    lambda request: self._stub.Process(request, timeout=deadline, metadata=self._metadata),
                    self.call_with_retries,
                    timeout=deadline,
                )
            except errors.SharedMemoryError:
                if transport == "shm":
                    raise
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
