"""Building, running and stopping the gRPC server.

``running_server()`` is what tests and the CLI's auto-started server use: a context manager that
binds (port 0 picks a free port), yields the bound address, and shuts down cleanly. ``serve()``
is ``plateforge serve``: it prints ``listening on HOST:PORT`` once ready and stops on SIGTERM or
SIGINT, letting in-flight calls finish within a grace period.
"""

from __future__ import annotations

import faulthandler
import ipaddress
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from plateforge.calls import MAX_MESSAGE_BYTES
from plateforge.errors import UsageError
from plateforge.server.checks import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_REQUEST_BYTES
from plateforge.server.interceptors import ServerInterceptor
from plateforge.server.jobs import TRAINING_SERVICE_NAME, JobManager, add_training_service
from plateforge.server.modelcard import publish_model
from plateforge.server.registry import Registry
from plateforge.server.service import SERVICE_NAME, InferenceService, add_to_server
from plateforge.server.shm import SHM_SERVICE_NAME, RegionTable, add_shm_service
from plateforge.server.tools import BUILTIN

__all__ = ["ServerConfig", "is_loopback", "running_server", "serve"]

log = logging.getLogger("plateforge.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    #: Worker threads: concurrent calls. Frames are big; more threads mostly add memory.
    workers: int = 4
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
    #: Trained models to serve, ``<models_dir>/<name>/<version>/`` (None: built-in tools only).
    models_dir: Path | None = None
    #: The most bytes of learned models kept loaded; least recently used ones are unloaded first.
    memory_budget_bytes: int = 8 * 1024**3
    #: Folders a request's paths (dataset manifests and their files) must lie in; empty: anywhere.
    data_roots: tuple[Path, ...] = ()


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


@contextmanager
def running_server(config: ServerConfig = ServerConfig()) -> Iterator[str]:
    """Start a server, yield ``HOST:PORT`` it is bound to, stop it on exit."""
    if not config.token and not is_loopback(config.host):
        raise UsageError(
            f"refusing to listen on {config.host} without a token: anyone on the network could use the "
            "server. Give --token (or PLATEFORGE_TOKEN), or bind 127.0.0.1"
        )
    registry = Registry(
        config.tools,
        device=config.device,
        models_dir=config.models_dir,
        memory_budget_bytes=config.memory_budget_bytes,
    )
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="plateforge"),
        interceptors=[ServerInterceptor(config.token)],
        options=options,
    )
    service = InferenceService(
        registry, max_frame_pixels=config.max_frame_pixels, max_request_bytes=config.max_request_bytes
    )
    add_to_server(service, server)
    # Same-host clients' shared-memory regions; released when their process ends or we stop.
    regions = RegionTable()
    service.shm_regions = regions
    add_shm_service(server, regions)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, TRAINING_SERVICE_NAME, SHM_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    address = _format_address(config.host, config.port)
    credentials = _tls_credentials(config)
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as error:
        raise UsageError(f"cannot listen on {address}: {error}") from None
    if port == 0:
        raise UsageError(f"cannot listen on {address}: the address is in use or not on this machine")
    # Jobs only once the port is ours: the manager resumes interrupted jobs as it starts.
    jobs: JobManager | None = None
    if config.jobs_dir is not None:
        jobs = add_training_service(
            server,
            jobs_dir=config.jobs_dir,
            device=config.device,
            publish=_publisher(config, registry),
            data_roots=config.data_roots,
        )
    server.start()
    for name in ("", SERVICE_NAME, *([TRAINING_SERVICE_NAME] if jobs else [])):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    try:
        yield _format_address(config.host, port)
    finally:
        health_servicer.enter_graceful_shutdown()
        if jobs is not None:
            jobs.shutdown()  # the running job checkpoints and is recorded INTERRUPTED
        server.stop(config.grace).wait()
        regions.close()


def serve(config: ServerConfig) -> int:
    """Run until SIGTERM/SIGINT; print the ready line scripts and farm templates wait for."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with running_server(config) as address:
        print(f"listening on {address}", flush=True)
        stop.wait()
        # A stop should take at most the grace period. Once in a while, under load, a server has
        # taken longer than a supervisor's patience (and been killed) without saying where it
        # waited: past grace + 5 s, every thread's stack goes to stderr. Not cancelled on
        # return, so a wait while the interpreter joins its threads at exit is reported too.
        faulthandler.dump_traceback_later(config.grace + 5.0, exit=False)
    print("stopped", file=sys.stderr, flush=True)
    return 0
