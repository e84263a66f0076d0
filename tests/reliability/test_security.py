"""Security, against real server processes on loopback.

Already covered elsewhere and not repeated here: a missing/wrong token on ListModels and Process
(tests/plateforge_server/test_server_process.py::test_calls_need_the_token), ``--host 0.0.0.0`` without a
token (…::test_non_loopback_without_token_is_refused), TLS with an openssl certificate
(tests/plateforge_server/test_tls.py), one unary frame over the message limit
(…::test_unary_over_the_message_limit_is_refused_clearly) and shared-memory registrations that
name paths (tests/plateforge_server/test_shm.py::test_bad_registrations_are_refused).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from plateforge.client import Client
from plateforge.errors import AuthError, ServerUnavailableError, UsageError
from plateforge.frames import Frame
from plateforge.jobs_client import TrainingClient
from plateforge.v1 import training_pb2, training_pb2_grpc
from plateforge_server.app import ServerConfig, running_server
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.plateforge_server.training.helpers import write_pairs
from tests.reliability.rpcs import Rpc, all_rpcs
from tests.tls import self_signed

pytestmark = pytest.mark.timeout(120)

RPCS = all_rpcs()
AUTH = (("authorization", f"Bearer {TOKEN}"),)
OPEN_SERVICES = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
}


# -- the token ---------------------------------------------------------------------------------------


def test_the_descriptors_cover_every_service_the_server_offers(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = list(stub.ServerReflectionInfo(iter([request]), metadata=AUTH, timeout=10))
    served = {s.name for s in replies[0].list_services_response.service} - OPEN_SERVICES
    assert served <= {r.service for r in RPCS}, served - {r.service for r in RPCS}
    assert {"plateforge.v1.Inference", "plateforge.v1.Training", "plateforge.v1.SharedMemory"} <= served


@pytest.mark.parametrize("token", [pytest.param(None, id="no-token"), pytest.param("wrong", id="wrong-token")])
@pytest.mark.parametrize("rpc", [pytest.param(r, id=r.id) for r in RPCS])
def test_every_rpc_needs_the_token(server: ServerProcess, rpc: Rpc, token: str | None) -> None:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        rpc.invoke(channel, [b""], metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, (rpc.path, info.value.details())
    assert "token" in (info.value.details() or "")


# -- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder, "server")
    stranger, _ = self_signed(folder, "stranger")
    proc = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    yield proc, cert, stranger
    proc.stop()


def test_tls_carries_every_transport_and_the_training_service(tls_server: tuple[ServerProcess, Path, Path]) -> None:
    proc, cert, _ = tls_server
    frame = Frame.from_array(np.random.default_rng(4).random((40, 56, 4)).astype(np.float16), frame_number=1)
    with Client(proc.address, token=TOKEN, root_certificates=cert.read_bytes(), retries=0) as client:
        for transport in ("shm", "unary", "stream"):
            out = client.process("passthrough", {"plate": frame}, transport=transport)  # type: ignore[arg-type]
            assert_same_frame(out.outputs["image"], frame, attributes=False)
        assert TrainingClient(client).list_jobs() == []


def test_tls_refuses_an_untrusted_certificate_and_a_missing_token(tls_server: tuple[ServerProcess, Path, Path]) -> None:
    proc, cert, stranger = tls_server
    with (
        Client(proc.address, token=TOKEN, root_certificates=stranger.read_bytes(), retries=0, timeout=5) as client,
        pytest.raises(ServerUnavailableError),
    ):
        client.list_models()
    with (
        Client(proc.address, root_certificates=cert.read_bytes(), retries=0, timeout=5) as client,
        pytest.raises(AuthError),
    ):
        client.list_models()


# -- binding ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("0.0.0.0", id="any-ipv4"),
        pytest.param("::", id="any-ipv6"),
        pytest.param("192.168.1.20", id="lan-address"),
        pytest.param(socket.gethostname(), id="hostname"),
    ],
)
@pytest.mark.parametrize("token", [pytest.param(None, id="no-token"), pytest.param("", id="empty-token")])
def test_no_network_address_without_a_token(host: str, token: str | None) -> None:
    with pytest.raises(UsageError, match="without a token"), running_server(ServerConfig(host=host, token=token)):
        pass


# -- paths in requests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, Path]]:
    base = tmp_path_factory.mktemp("roots")
    root, outside = base / "footage", base / "elsewhere"
    write_pairs(root / "good", frames=1, size=16)
    write_pairs(outside, frames=1, size=16)
    proc = start_server("--data-root", str(root), "--jobs-dir", str(base / "jobs"))
    yield proc, root, outside
    proc.stop()


def _start(proc: ServerProcess, dataset: Path | str, **fields: str) -> training_pb2.Job:
    with grpc.insecure_channel(proc.address) as channel:
        stub = training_pb2_grpc.TrainingStub(channel)
        request = training_pb2.StartTrainingRequest(dataset=str(dataset), tool="look", **fields)
        return stub.StartTraining(request, metadata=AUTH, timeout=30)


def _escape_cases(root: Path, outside: Path) -> dict[str, tuple[Path | str, str]]:
    (root / "link").mkdir(exist_ok=True)
    link = root / "link" / "dataset.toml"
    if not link.exists():
        link.symlink_to(outside / "dataset.toml")
    climbing = root / "climb"
    climbing.mkdir(exist_ok=True)
    (climbing / "dataset.toml").write_text(
        (outside / "dataset.toml")
        .read_text()
        .replace('"in/', '"../../elsewhere/in/')
        .replace('"out/', '"../../elsewhere/out/')
    )
    return {
        "absolute": (outside / "dataset.toml", "dataset manifest"),
        "dot-dot": (f"{root}/../elsewhere/dataset.toml", "dataset manifest"),
        "symlink": (link, "dataset manifest"),
        "system-file": ("/etc/passwd", "dataset manifest"),
        "sources-outside": (climbing / "dataset.toml", "dataset files"),
    }


@pytest.mark.parametrize("case", ["absolute", "dot-dot", "symlink", "system-file", "sources-outside"])
def test_dataset_paths_cannot_leave_the_data_roots(rooted: tuple[ServerProcess, Path, Path], case: str) -> None:
    proc, root, outside = rooted
    dataset, what = _escape_cases(root, outside)[case]
    with pytest.raises(grpc.RpcError) as info:
        _start(proc, dataset)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, info.value.details()
    assert what in (info.value.details() or "") and "outside the folders this server may read" in (
        info.value.details() or ""
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"model_name": "../../../tmp/evil"}, id="name-climbs"),
        pytest.param({"model_name": "/abs/path"}, id="name-absolute"),
        pytest.param({"model_version": ".."}, id="version-dot-dot"),
        pytest.param({"model_version": "v1/../../x"}, id="version-slash"),
    ],
)
def test_model_names_cannot_become_paths(rooted: tuple[ServerProcess, Path, Path], fields: dict[str, str]) -> None:
    proc, root, _ = rooted
    with pytest.raises(grpc.RpcError) as info:
        _start(proc, root / "good" / "dataset.toml", **fields)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be a plain name" in (info.value.details() or "")


def test_a_dataset_inside_the_roots_is_accepted(rooted: tuple[ServerProcess, Path, Path]) -> None:
    proc, root, _ = rooted
    job = _start(proc, root / "good" / "dataset.toml", config_json='{"steps": 1, "batch": 1, "crop": 16}')
    assert job.state == training_pb2.Job.STATE_QUEUED or job.state == training_pb2.Job.STATE_RUNNING
    with Client(proc.address, token=TOKEN) as client:
        TrainingClient(client).cancel(job.id)


# -- message sizes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rpc",
    [
        pytest.param(r, id=r.id)
        for r in RPCS
        if r.name in ("ListModels", "RegisterRegion", "ProcessStream", "StartTraining")
    ],
)
def test_oversized_messages_are_refused(server: ServerProcess, rpc: Rpc) -> None:
    """A message over the 160 MiB limit is refused by gRPC itself, before any handler runs, and
    the server keeps serving."""
    junk = b"\0" * (161 * 1024 * 1024)
    options = [("grpc.max_send_message_length", 256 * 1024 * 1024)]
    with grpc.insecure_channel(server.address, options=options) as channel, pytest.raises(grpc.RpcError) as info:
        rpc.invoke(channel, [junk], metadata=AUTH, timeout=60)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
    with Client(server.address, token=TOKEN) as client:
        assert client.list_models()
