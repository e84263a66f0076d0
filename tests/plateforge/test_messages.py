"""plateforge.messages: every failure a user can meet, told as one sentence naming the fix, with the
raw detail apart. Errors here are real ones (real servers, real calls, real files), not made up."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from plateforge import errors
from plateforge.client import Client
from plateforge.messages import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    explain,
    user_message,
)
from plateforge.v1 import inference_pb2
from tests.conftest import ServerProcess


def _dead_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_a_dead_server_in_a_host_is_the_fix_then_the_details() -> None:
    address = _dead_address()
    with Client(address, retries=1, backoff=0.01) as client, pytest.raises(errors.ServerUnavailableError) as caught:
        client.list_models()
    told = explain(caught.value)
    assert told.sentence == (
        f"no plateforge server at {address}: start one with `plateforge serve`, or check --server / "
        "PLATEFORGE_SERVER / the plugin's preferences"
    )
    assert "failed to connect to all addresses" not in told.sentence
    assert "failed to connect to all addresses" in told.details and told.exit_code == EXIT_UNREACHABLE
    first, second = user_message(caught.value).splitlines()
    assert first == told.sentence and second == f"details: {told.details}"


def test_the_connect_deadline_names_the_dead_server() -> None:
    address = _dead_address()
    with Client(address) as client, pytest.raises(errors.ServerUnavailableError) as caught:
        client.wait_ready(timeout=30, connect_timeout=1.0)
    assert caught.value.address == address
    assert "Connection refused" in explain(caught.value).details


@pytest.mark.parametrize(
    ("token", "sentence"),
    [
        pytest.param(
            "nope",
            "the server refused the token: check --token / PLATEFORGE_TOKEN / the plugin's preferences",
            id="wrong",
        ),
        pytest.param(
            None,
            "the server needs a token: give it with --token / PLATEFORGE_TOKEN / the plugin's preferences",
            id="missing",
        ),
    ],
)
def test_token_refusals(server: ServerProcess, token: str | None, sentence: str) -> None:
    with Client(server.address, token=token, retries=0) as client, pytest.raises(errors.AuthError) as caught:
        client.list_models()
    told = explain(caught.value)
    assert told.sentence == sentence and "Bearer" in told.details and told.exit_code == EXIT_REFUSED


def _raw(server: ServerProcess, method: str, **kwargs: object) -> grpc.RpcError:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method, inference_pb2.ListModelsRequest.SerializeToString, None)
        with pytest.raises(grpc.RpcError) as caught:
            call(inference_pb2.ListModelsRequest(), timeout=10, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_raw_grpc_statuses_are_told_too(server: ServerProcess) -> None:
    """A host or script calling stubs directly meets raw statuses; they get the same sentences."""
    auth = (("authorization", f"Bearer {server.token}"),)
    unknown = explain(_raw(server, "/plateforge.v1.Inference/NoSuchCall", metadata=auth))
    assert unknown.sentence.startswith("the server does not offer this call: it runs another plateforge version")
    refused = explain(_raw(server, "/plateforge.v1.Inference/ListModels", metadata=(("authorization", "Bearer x"),)))
    assert refused.sentence.startswith("the server refused the token")
    with grpc.insecure_channel(_dead_address()) as channel, pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary("/plateforge.v1.Inference/ListModels", None, None)(b"", timeout=5)
    dead = explain(caught.value, address="farm01:50061")
    assert dead.sentence.startswith("no plateforge server at farm01:50061") and dead.exit_code == EXIT_UNREACHABLE


def _not_a_dir(tmp: Path) -> None:
    (tmp / "file").write_bytes(b"")
    (tmp / "file" / "jobs").mkdir()


def _missing(tmp: Path) -> None:
    (tmp / "nope.exr").read_bytes()


def _exists(tmp: Path) -> None:
    (tmp / "here").mkdir()
    (tmp / "here").mkdir()


def _folder_as_file(tmp: Path) -> None:
    tmp.read_bytes()


def _disk_full(tmp: Path) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "out.exr"))


def _port_taken(tmp: Path) -> None:
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen()
        second.bind(first.getsockname())


@pytest.mark.parametrize(
    ("fail", "sentence"),
    [
        pytest.param(_not_a_dir, "a part of the path is a file, not a folder: check the path", id="ENOTDIR"),
        pytest.param(_missing, "nope.exr': it does not exist: check the path", id="ENOENT"),
        pytest.param(_exists, "here': something already exists there", id="EEXIST"),
        pytest.param(_folder_as_file, "it is a folder, where a file was expected", id="EISDIR"),
        pytest.param(_disk_full, "out.exr': the disk is full: free some space, or write elsewhere", id="ENOSPC"),
        pytest.param(_port_taken, "the address is in use (another server?): stop it", id="EADDRINUSE"),
    ],
)
def test_os_errors(tmp_path: Path, fail: Callable[[Path], None], sentence: str) -> None:
    with pytest.raises(OSError) as caught:
        fail(tmp_path)
    told = explain(caught.value)
    assert sentence in told.sentence and told.details.startswith("[Errno ") and told.exit_code == EXIT_REFUSED


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(errors.UsageError("--frames 10-1 runs backwards"), id="usage"),
        pytest.param(errors.LicenceError("'a.exr' has no licence"), id="licence"),
        pytest.param(errors.UnknownModelError("no model 'x'; it serves ['passthrough']"), id="unknown-model"),
    ],
)
def test_plateforge_errors_already_speak_for_themselves(error: errors.PlateforgeError) -> None:
    told = explain(error)
    assert told.sentence == str(error) and told.details == "" and told.exit_code == EXIT_REFUSED


def test_a_server_bug_asks_for_a_report() -> None:
    told = explain(errors.PlateforgeError("internal server error: KeyError: 'x'"))
    assert "a bug" in told.sentence and told.details == "internal server error: KeyError: 'x'"
    assert told.exit_code == EXIT_FAILED


def test_a_host_task_against_a_dead_server_reports_the_fix() -> None:
    """What a Nuke panel or a Blender status line shows when the server is gone: the host's own
    connection (core/hosts) and background task, a real dead address."""
    from plateforge.hosts.connection import ServerSettings, connect
    from plateforge.hosts.worker import BackgroundTask, TaskContext

    address = _dead_address()
    settings = ServerSettings(address=address, token=None, tls_ca=None, origin="preferences")

    def work(context: TaskContext) -> int:
        with connect(settings, timeout=5) as client:
            return len(client.list_models())

    task: BackgroundTask[int] = BackgroundTask(work).start()
    with pytest.raises(errors.ServerUnavailableError):
        task.wait(60)
    assert task.describe() == (
        f"failed: no plateforge server at {address}: start one with `plateforge serve`, or check --server / "
        "PLATEFORGE_SERVER / the plugin's preferences"
    )
    assert task.error is not None
    shown = user_message(task.error)
    assert "failed to connect to all addresses" not in shown.splitlines()[0]
    assert shown.splitlines()[1].startswith(f"details: server {address} unavailable: failed to connect")


@pytest.mark.parametrize(
    ("details", "start"),
    [
        pytest.param(
            "server a:1 did not become ready within 30 s", "the server at a:1 answers but is not ready", id="not-ready"
        ),
        pytest.param("server a:1 unavailable: no connection within 1 s", "nothing answered at a:1", id="silent"),
        pytest.param("server a:1 unavailable: Socket closed", "the server at a:1 closed the connection", id="closed"),
        pytest.param("server a:1 unavailable: Tls handshake failed", "no TLS connection to a:1", id="tls"),
    ],
)
def test_unavailable_causes_are_told_apart(details: str, start: str) -> None:
    told = explain(errors.ServerUnavailableError(details, address="a:1"))
    assert told.sentence.startswith(start) and told.details == details and told.exit_code == EXIT_UNREACHABLE
