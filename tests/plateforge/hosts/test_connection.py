"""Server settings and the status line, against a real server, a wrong token and no server."""

from __future__ import annotations

import socket

import pytest

from plateforge.client import Client
from plateforge.hosts.connection import ServerSettings, check_server, connect, models_for, resolve_settings
from tests.conftest import ServerProcess


@pytest.mark.parametrize(
    ("prefs", "env", "expected"),
    [
        pytest.param(
            {"server": "a:1", "token": "t"},
            {"PLATEFORGE_SERVER": "b:2", "PLATEFORGE_TOKEN": "u"},
            ServerSettings("a:1", "t", None, "preferences"),
            id="preferences-win",
        ),
        pytest.param(
            {"server": " ", "token": ""},
            {"PLATEFORGE_SERVER": "b:2", "PLATEFORGE_TOKEN": "u", "PLATEFORGE_TLS_CA": "/ca.pem"},
            ServerSettings("b:2", "u", "/ca.pem", "environment"),
            id="empty-preferences-fall-back-to-environment",
        ),
        pytest.param({}, {}, ServerSettings(None, None, None, "unset"), id="nothing-set"),
    ],
)
def test_resolve_settings(prefs: dict[str, str], env: dict[str, str], expected: ServerSettings) -> None:
    assert resolve_settings(prefs, environ=env) == expected


def test_connected_status_lists_the_models(server: ServerProcess) -> None:
    status = check_server(ServerSettings(server.address, server.token))
    assert status.connected
    assert {"passthrough", "cleanup-classical"} <= set(status.model_names)
    assert status.message.startswith(f"connected to {server.address}: ")
    assert "device: " in status.message
    assert [m.name for m in models_for(status.models, "cleanup")] == ["cleanup-classical"]
    assert len(models_for(status.models, "model")) == len(status.models)
    with connect(ServerSettings(server.address, server.token)) as client:
        assert isinstance(client, Client) and client.health()


def test_a_wrong_token_says_so(server: ServerProcess) -> None:
    status = check_server(ServerSettings(server.address, "wrong-token"))
    assert not status.connected and "refused the token" in status.message and server.address in status.message


def test_no_server_says_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed: nothing listens on that port now.
    status = check_server(ServerSettings(f"127.0.0.1:{port}", origin="environment"), timeout=1.0)
    assert not status.connected and status.models == ()
    assert f"no plateforge server answers at 127.0.0.1:{port} (environment)" in status.message
    assert "plateforge serve" in status.message
    unset = check_server(ServerSettings(None))
    assert not unset.connected and "PLATEFORGE_SERVER" in unset.message


def test_unknown_family_is_refused() -> None:
    from plateforge.errors import PlateforgeError

    with pytest.raises(PlateforgeError, match="known: cleanup, matte, relight, model"):
        models_for([], "paint")


def test_model_pickers_offer_references_and_keep_bare_names_meaning_the_newest() -> None:
    from plateforge.hosts.connection import model_choices
    from plateforge.models import ModelInfo, parse_model_ref

    served = [
        ModelInfo("sh010-clean", "step900", "cleanup"),
        ModelInfo("passthrough", "1", "passthrough"),
        ModelInfo("sh010-clean", "step2000", "cleanup"),
    ]
    choices = model_choices(served)
    assert list(choices) == [
        "sh010-clean@step900", "passthrough@1", "sh010-clean@step2000", "sh010-clean", "passthrough",
    ]  # fmt: skip
    assert choices["sh010-clean"].version == "step2000"
    for ref, info in choices.items():  # every choice is a reference the CLI and the client take
        parsed = parse_model_ref(ref)
        assert parsed.name == info.name and parsed.version in ("", info.version)
