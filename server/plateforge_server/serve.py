"""Run the inference server until SIGTERM or SIGINT.

Prints `listening on HOST:PORT` once ready. Binds 127.0.0.1 unless --host says otherwise, and
refuses a non-loopback address without a token. Needs plateforge[server].
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from plateforge.errors import UsageError
from plateforge.messages import os_reason
from plateforge.paths import default_jobs_dir, default_models_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=50061, help="port (0 picks a free one; default 50061)")
    parser.add_argument("--token", help="require this bearer token (default: $PLATEFORGE_TOKEN)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain (needs --tls-key)")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    parser.add_argument("--workers", type=int, default=4, help="frames computed at once (default 4)")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end a stream that sends nothing for this long, with DEADLINE_EXCEEDED (default 30)",
    )
    parser.add_argument("--max-streams", type=int, default=None, help="streams open at once in all (default 512)")
    parser.add_argument(
        "--max-streams-per-peer", type=int, default=None, help="streams open at once from one address (default 128)"
    )
    parser.add_argument(
        "--max-anonymous-streams",
        type=int,
        default=None,
        help="health Watch streams (no token needed) open at once, on top of --max-streams (default 128)",
    )
    parser.add_argument(
        "--max-frame-pixels", type=int, default=None, help="refuse frames with more pixels (default 16384x16384)"
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="serve the trained models in MODELS_DIR/<name>/<version>/ (default: $PLATEFORGE_MODELS_DIR, "
        f"else {str(default_models_dir()).replace('%', '%%')})",
    )
    parser.add_argument(
        "--jobs-dir",
        type=Path,
        default=None,
        help="keep training jobs (state, checkpoints, exported models) here (default: $PLATEFORGE_JOBS_DIR, "
        f"else {str(default_jobs_dir()).replace('%', '%%')})",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="requests may only name files (dataset manifests and their footage) under DIR; repeat for "
        "several (default: $PLATEFORGE_DATA_ROOTS, separated by ':'; none: any path). Give one on a farm",
    )
    parser.add_argument(
        "--memory-budget-gb",
        type=float,
        default=8.0,
        help="most GiB of trained models kept loaded; least recently used ones are unloaded (default 8)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: $PLATEFORGE_TORCH_THREADS, else the cores this process may use)",
    )
    parser.add_argument(
        "--status-port",
        type=int,
        default=None,
        metavar="N",
        help="serve a read-only status page and Prometheus /metrics on port N (0: a free one; default: none)",
    )
    parser.add_argument(
        "--status-host",
        default="127.0.0.1",
        help="address of the status port (default 127.0.0.1; any other needs --status-token, or TLS and --token)",
    )
    parser.add_argument(
        "--status-token",
        default=None,
        help="a separate read-only token for the status port (default: $PLATEFORGE_STATUS_TOKEN; none: the RPC "
        "token, accepted on a loopback status port or over TLS only)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def check_folder(path: Path, what: str) -> Path:
    """``path``, created if need be, once it is known to be a folder this process may write."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {what} '{path}': {os_reason(error)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {what} '{path}': choose a folder you may write, or fix its permissions")
    return path


def check_port(host: str, port: int) -> None:
    """Refuse, in words, an address this machine cannot listen on, before gRPC tries and logs its
    own account of the failure. (The server binds again after this; a race is still reported.)"""
    if port == 0:
        return
    if not 0 < port < 65536:
        raise UsageError(f"--port must be from 1 to 65535 (or 0 for any free port), got {port}")
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(
            f"cannot listen on {host!r}: no such address ({error.strerror}); try --host 127.0.0.1"
        ) from None
    for family, kind, proto, _, sockaddr in found:
        with socket.socket(family, kind, proto) as probe:
            # As gRPC binds: a port whose old connections linger in TIME_WAIT is free to it.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise UsageError(
                        f"port {port} on {host} is already in use (another plateforge serve?): stop that "
                        "server, or choose another --port (--port 0 picks a free one)"
                    ) from None
                if error.errno == errno.EADDRNOTAVAIL:
                    raise UsageError(
                        f"cannot listen on {host}: it is not an address of this machine; bind 127.0.0.1 (this "
                        "machine only) or 0.0.0.0 (every interface, with --token)"
                    ) from None
                raise UsageError(f"cannot listen on {host}:{port}: {os_reason(error)}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.memory_budget_gb > 0:
        raise UsageError(f"--memory-budget-gb must be above 0, got {args.memory_budget_gb}")
    models_dir = args.models_dir or Path(os.environ.get("PLATEFORGE_MODELS_DIR") or default_models_dir())
    jobs_dir = args.jobs_dir or Path(os.environ.get("PLATEFORGE_JOBS_DIR") or default_jobs_dir())
    # Both checked before gRPC starts: its own failures here are a log line or a traceback.
    check_folder(jobs_dir.expanduser(), "the jobs folder (--jobs-dir or PLATEFORGE_JOBS_DIR)")
    check_port(args.host, args.port)
    try:
        from plateforge_server.app import ServerConfig, is_loopback, serve
        from plateforge_server.checks import DEFAULT_MAX_FRAME_PIXELS
        from plateforge_server.device import configure_threads, pick_device
        from plateforge_server.limits import StreamLimits
        from plateforge_server.roots import data_roots_from_env
        from plateforge_server.status import check_exposure
    except ImportError as error:
        raise UsageError(f"this Python cannot run the server ({error}); install plateforge[server]") from None
    token = args.token or os.environ.get("PLATEFORGE_TOKEN") or None
    status_token = args.status_token or os.environ.get("PLATEFORGE_STATUS_TOKEN") or None
    if args.status_port is not None:
        # Refused before anything binds, the status address included.
        check_exposure(
            host=args.status_host,
            loopback=is_loopback(args.status_host),
            status_token=status_token,
            tls=bool(args.tls_cert and args.tls_key),
            rpc_token=token,
        )
        if args.status_port == args.port != 0 and args.status_host == args.host:
            raise UsageError(f"--status-port {args.status_port} is the gRPC --port too: give each its own")
        check_port(args.status_host, args.status_port)
    given = {"idle_timeout": args.idle_timeout, "max_streams": args.max_streams}
    given["max_streams_per_peer"] = args.max_streams_per_peer
    given["max_anonymous_streams"] = args.max_anonymous_streams
    try:
        limits = StreamLimits(**{k: v for k, v in given.items() if v is not None})
    except ValueError as error:
        raise UsageError(str(error)) from None
    for name in ("plateforge", "plateforge_server"):  # the host package's loggers, and the server's
        logging.getLogger(name).setLevel(args.log_level)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configure_threads(args.threads)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        token=token,
        workers=args.workers,
        limits=limits,
        max_frame_pixels=args.max_frame_pixels or DEFAULT_MAX_FRAME_PIXELS,
        device=pick_device(args.device),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        models_dir=models_dir.expanduser(),
        memory_budget_bytes=int(args.memory_budget_gb * 1024**3),
        jobs_dir=jobs_dir.expanduser(),
        data_roots=tuple(p.expanduser() for p in args.data_root) if args.data_root else data_roots_from_env(),
        status_port=args.status_port,
        status_host=args.status_host,
        status_token=status_token,
    )
    return serve(config)
