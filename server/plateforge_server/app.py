"""Building, running and stopping the gRPC server.

``running_server()`` is what tests and the CLI's auto-started server use: a context manager that
binds (port 0 picks a free port), yields the bound address, and shuts down cleanly; ``serving()``
also yields the job manager. The server is ``grpc.aio`` on an event loop of its own thread: a
call that waits costs no thread, tools run on a bounded executor. ``serve()``
is ``plateforge serve``: it prints ``listening on HOST:PORT`` once ready and stops on SIGTERM or
SIGINT, letting in-flight calls finish within a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import ipaddress
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import grpc
from grpc import aio
from grpc_health.v1 import _async as health_async  # the asyncio servicer, health.aio at runtime
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from plateforge.calls import MAX_MESSAGE_BYTES
from plateforge.errors import UsageError
from plateforge_server.checks import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_REQUEST_BYTES
from plateforge_server.export.service import EXPORT_SERVICE_NAME, add_export_service
from plateforge_server.interceptors import ServerInterceptor
from plateforge_server.jobs import TRAINING_SERVICE_NAME, JobManager, add_training_service
from plateforge_server.limits import StreamLimits
from plateforge_server.modelcard import publish_model
from plateforge_server.registry import Registry
from plateforge_server.service import SERVICE_NAME, InferenceService, add_to_server
from plateforge_server.shm import SHM_SERVICE_NAME, RegionTable, add_shm_service
from plateforge_server.status import (
    ServerMetrics,
    ServerView,
    StatusAuth,
    StatusSite,
    check_exposure,
    start_status_site,
)
from plateforge_server.tools import BUILTIN

__all__ = ["Running", "ServerConfig", "is_loopback", "running_server", "serve", "serving"]

log = logging.getLogger("plateforge_server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    #: Frames computed at once (compute threads). Frames are big; more mostly add memory. Calls
    #: that wait (idle streams, watches, queued frames) hold no thread.
    workers: int = 4
    #: Idle deadline and stream caps, per peer and in all (server/plateforge_server/limits.py).
    limits: StreamLimits = field(default_factory=StreamLimits)
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    device: str = "cpu"
    #: Seconds in-flight calls get to finish on shutdown.
    grace: float = 10.0
    #: Tool modules to serve (import names).
    tools: tuple[str, ...] = BUILTIN
    #: PEM certificate chain and private key: serve TLS instead of plaintext when both are given.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: Folder for training jobs (state, checkpoints, exported models); None: no Training service.
    jobs_dir: Path | None = None
    #: Resume jobs that a previous server left interrupted, as the Training service starts.
    resume_jobs: bool = True
    #: Trained models to serve, ``<models_dir>/<name>/<version>/`` (None: built-in tools only).
    models_dir: Path | None = None
    #: The most bytes of learned models kept loaded; least recently used ones are unloaded first.
    memory_budget_bytes: int = 8 * 1024**3
    #: Folders a request's paths (dataset manifests and their files) must lie in; empty: anywhere.
    data_roots: tuple[Path, ...] = ()
    #: The status page and /metrics (server/plateforge_server/status/): None: not served; 0: a free port.
    status_port: int | None = None
    status_host: str = "127.0.0.1"
    #: A read-only token for the status port; without it the RPC token, on loopback or TLS only.
    status_token: str | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not config.tls_cert and not config.tls_key:
        return None
    if not (config.tls_cert and config.tls_key):
        raise UsageError("TLS needs both a certificate (--tls-cert) and its private key (--tls-key)")
    try:
        with open(config.tls_key, "rb") as key, open(config.tls_cert, "rb") as cert:
            return grpc.ssl_server_credentials([(key.read(), cert.read())])
    except OSError as error:
        raise UsageError(f"cannot read TLS material {error.filename}: {error.strerror}") from None


def _publisher(config: ServerConfig, registry: Registry) -> Callable[[Path], Path] | None:
    """Trained models go into the models directory and are served at once."""
    if config.models_dir is None:
        return None
    models_dir = config.models_dir

    def publish(folder: Path) -> Path:
        served = publish_model(folder, models_dir)
        registry.refresh()
        return served

    return publish


@dataclass(frozen=True)
class Running:
    """A started server: the ``HOST:PORT`` it is bound to, and its job manager if it has one."""

    address: str
    jobs: JobManager | None
    #: Where the status page is served (``http://HOST:PORT/``), None when it is not.
    status_url: str | None = None


@dataclass
class _Pools:
    """The server's threads. Calls that wait hold none of them; see each field for who does."""

    #: Tools: ``config.workers`` frames are computed at once, the rest wait their turn.
    compute: futures.ThreadPoolExecutor
    #: The end of a ProcessStream's assembly (its chunks land on the event loop as they arrive)
    #: and WatchJob waits; threads are made on demand, at most one per stream the caps allow.
    streams: futures.ThreadPoolExecutor
    #: Plain (non-async) handlers: job control, shared-memory registration. Short calls.
    blocking: futures.ThreadPoolExecutor

    @classmethod
    def for_config(cls, config: ServerConfig) -> _Pools:
        return cls(
            compute=futures.ThreadPoolExecutor(config.workers, thread_name_prefix="plateforge-compute"),
            streams=futures.ThreadPoolExecutor(config.limits.max_streams, thread_name_prefix="plateforge-stream"),
            blocking=futures.ThreadPoolExecutor(max(4, config.workers), thread_name_prefix="plateforge-call"),
        )

    def shutdown(self) -> None:
        for pool in (self.blocking, self.streams, self.compute):
            pool.shutdown(wait=True, cancel_futures=True)


class _ServerThread:
    """An asyncio gRPC server on an event loop of its own thread, so that callers (the CLI,
    tests) keep a plain blocking interface: :meth:`start` returns once the port is bound and
    every service is serving; :meth:`stop` lets in-flight calls finish within the grace period."""

    def __init__(self, config: ServerConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.pools = _Pools.for_config(config)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._running: Running | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="plateforge-server", daemon=True)

    def start(self) -> Running:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            self.pools.shutdown()
            raise self._failure
        assert self._running is not None
        return self._running

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self.pools.shutdown()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), or logged once serving
            if not self._ready.is_set():
                self._failure = error
                self._ready.set()
            else:
                log.exception("the server's event loop failed")

    async def _serve(self) -> None:
        config = self.config
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = aio.server(
            migration_thread_pool=self.pools.blocking,
            interceptors=[ServerInterceptor(config.token, limits=config.limits, blocking=self.pools.blocking)],
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        service = InferenceService(
            self.registry,
            max_frame_pixels=config.max_frame_pixels,
            max_request_bytes=config.max_request_bytes,
            compute=self.pools.compute,
            receive=self.pools.streams,
        )
        metrics = ServerMetrics(device=config.device)
        service.metrics = metrics
        add_to_server(service, server)
        # Same-host clients' shared-memory regions; released when their process ends or we stop.
        regions = RegionTable()
        service.shm_regions = regions
        add_shm_service(cast(grpc.Server, server), regions)  # it only adds handlers, as on any server
        add_export_service(server, self.registry)
        health_servicer = health_async.HealthServicer()  # a Watch waits on an asyncio Condition, no thread
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                TRAINING_SERVICE_NAME,
                SHM_SERVICE_NAME,
                EXPORT_SERVICE_NAME,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        jobs: JobManager | None = None
        status_site: StatusSite | None = None
        try:
            address = _format_address(config.host, config.port)
            credentials = _tls_credentials(config)
            try:
                port = (
                    server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
                )
            except RuntimeError as error:
                raise UsageError(f"cannot listen on {address}: {error}") from None
            if port == 0:
                raise UsageError(f"cannot listen on {address}: the address is in use or not on this machine")
            # Jobs only once the port is ours: the manager resumes interrupted jobs as it starts.
            if config.jobs_dir is not None:
                jobs = add_training_service(
                    server,
                    jobs_dir=config.jobs_dir,
                    waiting=self.pools.streams,
                    device=config.device,
                    auto_resume=config.resume_jobs,
                    publish=_publisher(config, self.registry),
                    data_roots=config.data_roots,
                )
                jobs.metrics = metrics
            metrics.watch_state(jobs)
            await server.start()
            serving_now: dict[str, str] = {}
            for name in ("", SERVICE_NAME, *([TRAINING_SERVICE_NAME] if jobs else [])):
                await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
                serving_now[name] = "SERVING"
            if config.status_port is not None:
                view = ServerView(self.registry, jobs, metrics, config.device, credentials is not None, serving_now)
                status_site = await start_status_site(
                    view,
                    _status_auth(config),
                    host=config.status_host,
                    port=config.status_port,
                    ssl_context=_status_tls(config),
                )
            self._running = Running(
                _format_address(config.host, port), jobs, status_site.url if status_site is not None else None
            )
            self._ready.set()
            await self._stop.wait()
            await health_servicer.enter_graceful_shutdown()
            serving_now.update(dict.fromkeys(serving_now, "NOT_SERVING"))
            if jobs is not None:
                # The running job checkpoints and is recorded INTERRUPTED; calls go on meanwhile.
                await self._loop.run_in_executor(None, jobs.shutdown)
                jobs = None
            await server.stop(config.grace)
        finally:
            if status_site is not None:
                await status_site.stop()
            if jobs is not None:
                jobs.shutdown()
            regions.close()


def _status_auth(config: ServerConfig) -> StatusAuth:
    return StatusAuth.for_server(
        status_token=config.status_token,
        rpc_token=config.token,
        loopback=is_loopback(config.status_host),
        tls=bool(config.tls_cert and config.tls_key),
    )


def _status_tls(config: ServerConfig) -> ssl.SSLContext | None:
    """The gRPC port's certificate serves the status port too: one identity per server."""
    if not (config.tls_cert and config.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


@contextmanager
def serving(config: ServerConfig = ServerConfig()) -> Iterator[Running]:
    """Start a server; yield where it listens (and its job manager); stop it on exit."""
    if not config.token and not is_loopback(config.host):
        raise UsageError(
            f"refusing to listen on {config.host} without a token: anyone on the network could use the "
            "server. Give --token (or PLATEFORGE_TOKEN), or bind 127.0.0.1"
        )
    if config.status_port is not None:
        check_exposure(
            host=config.status_host,
            loopback=is_loopback(config.status_host),
            status_token=config.status_token,
            tls=bool(config.tls_cert and config.tls_key),
            rpc_token=config.token,
        )
    registry = Registry(
        config.tools,
        device=config.device,
        models_dir=config.models_dir,
        memory_budget_bytes=config.memory_budget_bytes,
    )
    thread = _ServerThread(config, registry)
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


@contextmanager
def running_server(config: ServerConfig = ServerConfig()) -> Iterator[str]:
    """Start a server, yield ``HOST:PORT`` it is bound to, stop it on exit."""
    with serving(config) as running:
        yield running.address


def serve(config: ServerConfig) -> int:
    """Run until SIGTERM/SIGINT; print the ready line scripts and farm templates wait for."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with serving(config) as running:
        if running.status_url is not None:
            print(f"status page on {running.status_url}", file=sys.stderr, flush=True)
        print(f"listening on {running.address}", flush=True)
        stop.wait()
        # A stop should take at most the grace period. Once in a while, under load, a server has
        # taken longer than a supervisor's patience (and been killed) without saying where it
        # waited: past grace + 5 s, every thread's stack goes to stderr. Not cancelled on
        # return, so a wait while the interpreter joins its threads at exit is reported too.
        faulthandler.dump_traceback_later(config.grace + 5.0, exit=False)
    print("stopped", file=sys.stderr, flush=True)
    return 0
