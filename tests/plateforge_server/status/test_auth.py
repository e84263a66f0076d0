"""Who may read the status port, on real server processes: 401 without the token (page,
/metrics, JSON, pictures), the RPC token only while no status token is set, and no status
address off loopback without a token fit to cross the network."""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from plateforge.errors import UsageError
from plateforge_server.status import StatusAuth, check_exposure
from tests.conftest import TOKEN
from tests.plateforge_server.status.helpers import STATUS_TOKEN, get, start_status_server
from tests.tls import certificate

__all__ = ["certificate"]  # the self-signed certificate fixture

PATHS = ("", "metrics", "api/status", "status.js", "jobs/none/loss.png")


def test_without_a_status_token_the_rpc_token_opens_it_on_loopback() -> None:
    status = start_status_server()
    try:
        for path in PATHS:
            code, headers, body = get(status.url + path)
            assert code == 401, (path, body)
            assert headers["WWW-Authenticate"].startswith('Basic realm="plateforge status"')
            assert get(status.url + path, token="not-" + TOKEN)[0] == 401
            assert get(status.url + path, token=TOKEN)[0] == (404 if path.startswith("jobs/") else 200)
        # A browser's way: the token as the password of HTTP Basic authentication.
        code, headers, body = get(status.url, basic=TOKEN)
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        assert b"<h1>plateforge" in body
        assert get(status.url, basic="wrong")[0] == 401
    finally:
        assert status.server.stop() == 0


def test_a_status_token_is_the_only_key_and_the_rpc_token_is_refused() -> None:
    status = start_status_server("--status-token", STATUS_TOKEN)
    try:
        for path in ("", "metrics", "api/status"):
            assert get(status.url + path)[0] == 401
            assert get(status.url + path, token=TOKEN)[0] == 401, "the RPC token must not open the status port"
            assert get(status.url + path, token=STATUS_TOKEN)[0] == 200
    finally:
        assert status.server.stop() == 0


def test_a_server_without_any_token_has_an_open_status_page() -> None:
    status = start_status_server(token=None)
    try:
        assert get(status.url + "metrics")[0] == 200
    finally:
        assert status.server.stop() == 0


def test_with_tls_the_status_port_is_https_with_the_servers_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    status = start_status_server("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert status.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        assert get(status.url + "metrics", token=TOKEN, tls=trusted)[0] == 200
        assert get(status.url + "metrics", tls=trusted)[0] == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served there
            get(status.url.replace("https://", "http://") + "metrics", token=TOKEN)
    finally:
        assert status.server.stop() == 0


def test_a_status_port_off_loopback_needs_a_status_token() -> None:
    # 192.0.2.1 (TEST-NET-1) is never bound: the refusal comes first.
    command = [sys.executable, "-m", "plateforge_server", "--port", "0", "--token", TOKEN, "--status-port", "0"]
    result = subprocess.run(
        [*command, "--status-host", "192.0.2.1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "refusing to serve the status page on 192.0.2.1" in result.stderr
    assert "--status-token" in result.stderr
    assert "listening on" not in result.stdout


@pytest.mark.parametrize(
    ("status_token", "tls", "rpc_token", "allowed"),
    [
        (None, False, None, False),
        (None, False, "rpc", False),  # plain HTTP would carry the RPC token across the network
        (None, True, None, False),  # TLS without any token: anyone could read it
        (None, True, "rpc", True),
        ("status", False, None, True),
        ("status", False, "rpc", True),
    ],
)
def test_exposure_rules_off_loopback(status_token: str | None, tls: bool, rpc_token: str | None, allowed: bool) -> None:
    def check() -> None:
        check_exposure(host="10.0.0.5", loopback=False, status_token=status_token, tls=tls, rpc_token=rpc_token)

    if allowed:
        check()
    else:
        with pytest.raises(UsageError, match="--status-token"):
            check()
    check_exposure(host="127.0.0.1", loopback=True, status_token=status_token, tls=tls, rpc_token=rpc_token)


def test_which_token_is_accepted() -> None:
    assert StatusAuth.for_server(status_token="s", rpc_token="r", loopback=True, tls=False).token == "s"
    assert StatusAuth.for_server(status_token=None, rpc_token="r", loopback=True, tls=False).token == "r"
    assert StatusAuth.for_server(status_token=None, rpc_token="r", loopback=False, tls=True).token == "r"
    assert StatusAuth.for_server(status_token=None, rpc_token=None, loopback=True, tls=False).token is None
    auth = StatusAuth("s3cret")
    assert auth.allows("Bearer s3cret") and auth.allows("bearer  s3cret ")
    assert not auth.allows(None) and not auth.allows("") and not auth.allows("Bearer s3cre")
    assert not auth.allows("Basic !!!not-base64") and not auth.allows("Token s3cret")
