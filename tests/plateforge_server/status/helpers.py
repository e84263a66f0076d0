"""A real `plateforge serve` with its status port, and plain HTTP requests to it."""

from __future__ import annotations

import base64
import re
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tests.conftest import TOKEN, ServerProcess, start_server

STATUS_TOKEN = "status-token-51c2"


@dataclass
class StatusServer:
    server: ServerProcess
    url: str


def start_status_server(*args: str, token: str | None = TOKEN, timeout: float = 60.0) -> StatusServer:
    """A server process with ``--status-port 0``; the status URL from the line it writes on stderr."""
    server = start_server("--status-port", "0", *args, token=token, timeout=timeout)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # stderr is drained on a thread: the line may lag the ready line
        for line in list(server.stderr_lines):
            found = re.search(r"status page on (https?://\S+)", line)
            if found:
                return StatusServer(server, found.group(1))
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"no 'status page on' line; stderr: {server.stderr_lines[-20:]}")


def get(
    url: str, *, token: str | None = None, basic: str | None = None, tls: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET (a 4xx is returned, not raised)."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"someone:{basic}".encode()).decode()
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30, context=tls) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
