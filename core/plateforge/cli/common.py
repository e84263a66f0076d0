"""Options and set-up shared by the verbs that talk to a server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from plateforge.cli.progress import Progress
from plateforge.client import Client, server_address, server_tls_ca, server_token
from plateforge.localserver import local_server

__all__ = ["CONNECT_SECONDS", "ProgressLine", "add_server_arguments", "connect"]

#: Seconds a named server has to accept the connection before the command gives up on it: a
#: server on this machine or the studio network connects in milliseconds, and a command that
#: cannot reach its server should say so within 2 s (process start included).
CONNECT_SECONDS = 1.0


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="server to use, or several as HOST:PORT,HOST:PORT (calls are spread over them) "
        "(default: $PLATEFORGE_SERVER; if unset, a private local server is started for this command)",
    )
    group.add_argument("--token", help="auth token (default: $PLATEFORGE_TOKEN)")
    group.add_argument(
        "--tls-ca", metavar="PEM", help="connect with TLS, trusting this CA certificate (default: $PLATEFORGE_TLS_CA)"
    )
    group.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per call (default 300)")


@contextmanager
def connect(args: argparse.Namespace, *, quiet: bool = False, local_args: Sequence[str] = ()) -> Iterator[Client]:
    """A ready client for the given server, or for a private local one started now (with
    ``local_args`` added to its command line)."""
    address = server_address(args.server)
    if address:
        ca = server_tls_ca(args.tls_ca)
        with Client(address, token=server_token(args.token), timeout=args.timeout, root_certificates=ca) as client:
            # A server that is there accepts at once: refuse fast (and say why) when none is.
            client.wait_ready(timeout=min(30.0, args.timeout), connect_timeout=CONNECT_SECONDS)
            yield client
        return
    if not quiet:
        print("starting a local server for this command…", file=sys.stderr, flush=True)
    with (
        local_server(extra_args=local_args) as server,
        Client(server.address, token=server.token, timeout=args.timeout) as client,
    ):
        client.wait_ready(timeout=60.0)
        yield client


class ProgressLine:
    """Frames done, as :func:`plateforge.batch.run_batch` reports them, shown by :class:`Progress`
    (a bar with rate and ETA on a terminal, plain lines off one, nothing when ``quiet``)."""

    def __init__(self, label: str, *, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.progress = Progress(label, unit="fr", stream=stream, quiet=quiet, every=10)

    def __call__(self, done: int, total: int, frame: int) -> None:
        self.progress.update(done, total, f"frame {frame}")
