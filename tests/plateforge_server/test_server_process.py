"""The server as a real process on loopback: ready line, health, reflection, auth, limits,
exact round trips, bad input, shutdown, and a server that goes away mid-job."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from plateforge import streams
from plateforge.calls import UNARY_LIMIT_BYTES, ProcessCall
from plateforge.client import Client
from plateforge.errors import (
    AuthError,
    FrameError,
    FrameTooLargeError,
    NonFiniteError,
    ParameterError,
    ServerUnavailableError,
    UnknownModelError,
)
from plateforge.frames import Box, Frame
from plateforge.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame


def _frame(width: int = 64, height: int = 48, *, origin: tuple[int, int] = (0, 0), number: int | None = 1001) -> Frame:
    rng = np.random.default_rng(width * height)
    window = Box.from_size(width, height, x=origin[0], y=origin[1])
    return Frame(
        channels={
            "R": rng.random((height, width), dtype=np.float32).astype(np.float16),
            "G": rng.random((height, width), dtype=np.float32).astype(np.float16),
            "B": rng.random((height, width), dtype=np.float32).astype(np.float16),
            "A": np.ones((height, width), np.float16),
            "Z": rng.random((height, width), dtype=np.float32) * 100,
            "id": rng.integers(0, 2**32 - 1, (height, width), dtype=np.uint32),
        },
        data_window=window,
        display_window=Box(0, 0, 1919, 1079),
        frame_number=number,
        colour_space="ACEScg",
        attributes={"owner": "plate dept"},
    )


def test_ready_line_and_health_without_token(server: ServerProcess) -> None:
    host, port = server.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    with grpc.insecure_channel(server.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="plateforge.v1.Inference"), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_training_service_is_served(server: ServerProcess) -> None:
    from plateforge.jobs_client import TrainingClient

    with grpc.insecure_channel(server.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="plateforge.v1.Training"), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with Client(server.address, token=server.token) as client:
        assert TrainingClient(client).list_jobs() == []


def test_reflection_lists_services(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = list(stub.ServerReflectionInfo(iter([request]), metadata=(("authorization", f"Bearer {TOKEN}"),)))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"plateforge.v1.Inference", "plateforge.v1.Training", "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize(
    "token",
    [pytest.param(None, id="missing"), pytest.param("wrong", id="wrong"), pytest.param("", id="empty")],
)
def test_calls_need_the_token(server: ServerProcess, token: str | None) -> None:
    with Client(server.address, token=token or None, retries=0) as client:
        with pytest.raises(AuthError, match="token"):
            client.list_models()
        with pytest.raises(AuthError):
            client.process("passthrough", {"plate": _frame()}, transport="stream")
        with pytest.raises(AuthError):
            client.process("passthrough", {"plate": _frame()}, transport="unary")


def test_raw_status_code_is_unauthenticated(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListModels(inference_pb2.ListModelsRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_list_models(client: Client) -> None:
    infos = {i.name: i for i in client.list_models()}
    assert {"passthrough", "cleanup-classical"} <= set(infos)
    cleanup = infos["cleanup-classical"]
    assert [i.name for i in cleanup.inputs][:2] == ["plate", "mask"]
    assert cleanup.temporal_radius >= 1
    assert all(p.description for p in cleanup.parameters)


def test_list_models_gives_the_hash_outputs_record(client: Client) -> None:
    """ModelInfo.model_hash is typed on the wire (not only an attribute) and is the modelHash
    every output of that model records."""
    info = next(i for i in client.list_models() if i.name == "passthrough")
    assert re.fullmatch(r"[0-9a-f]{64}", info.model_hash), info.model_hash
    assert info.attributes["model_hash"] == info.model_hash  # what older hosts read
    result = client.process("passthrough", {"plate": _frame(16, 8)})
    assert result.provenance["plateforge/modelHash"] == info.model_hash


@pytest.mark.parametrize("transport", ["unary", "stream"])
@pytest.mark.parametrize(
    ("size", "origin"),
    [pytest.param((64, 48), (0, 0), id="small"), pytest.param((333, 121), (-17, 40), id="odd-window")],
)
def test_passthrough_is_exact(client: Client, transport: str, size: tuple[int, int], origin: tuple[int, int]) -> None:
    frame = _frame(*size, origin=origin)
    result = client.process("passthrough", {"plate": frame}, transport=transport)  # type: ignore[arg-type]
    out = result.outputs["image"]
    assert_same_frame(out, frame, attributes=False)
    assert out.attributes["owner"] == "plate dept"
    assert result.provenance["plateforge/model"] == "passthrough"
    assert re.fullmatch(r"xxh3-128:[0-9a-f]{32}", result.provenance["plateforge/sourcePixelsDigest"])


def test_subsampled_channels_pass_through(client: Client) -> None:
    frame = _frame(64, 48)
    frame = frame.replace(
        channels={**frame.channels, "RY": np.full((24, 32), 0.25, np.float16)}, sampling={"RY": (2, 2)}
    )
    out = client.process("passthrough", {"plate": frame}, transport="stream").outputs["image"]
    assert out.sampling == {"RY": (2, 2)}
    assert np.array_equal(out.channels["RY"], frame.channels["RY"])


def test_large_frame_streams_automatically(client: Client) -> None:
    frame = Frame.from_array(np.random.default_rng(1).random((1200, 2048, 4), dtype=np.float32))
    assert frame.nbytes > UNARY_LIMIT_BYTES
    out = client.process("passthrough", {"plate": frame}).outputs["image"]
    assert_same_frame(out, frame, attributes=False)


def test_unary_over_the_message_limit_is_refused_clearly(server: ServerProcess) -> None:
    # 4096 x 2160 float RGBA fits; a 6K float RGBA frame (255 MB) does not.
    frame = Frame.from_array(np.zeros((3160, 6000, 4), np.float32))
    with Client(server.address, token=server.token, retries=0) as client, pytest.raises(FrameTooLargeError):
        client.process("passthrough", {"plate": frame}, transport="unary")


def test_max_frame_pixels() -> None:
    proc = start_server("--max-frame-pixels", "10000")
    try:
        with Client(proc.address, token=TOKEN, retries=0) as client:
            client.process("passthrough", {"plate": _frame(100, 100)})
            with pytest.raises(FrameTooLargeError, match="at most 10000"):
                client.process("passthrough", {"plate": _frame(101, 100)})
            with pytest.raises(FrameTooLargeError):
                client.process("passthrough", {"plate": _frame(101, 100)}, transport="stream")
    finally:
        assert proc.stop() == 0


def test_non_finite_refused_naming_frame_and_channel(client: Client) -> None:
    frame = _frame(number=1042)
    bad = frame.channels["G"].copy()
    bad[3, 4] = np.inf
    bad[5, 6] = np.nan
    frame = frame.replace(channels={**frame.channels, "G": bad})
    for transport in ("unary", "stream"):
        with pytest.raises(NonFiniteError, match=r"frame 1042 channel 'G' holds 1 NaN and 1 Inf"):
            client.process("passthrough", {"plate": frame}, transport=transport)  # type: ignore[arg-type]
    out = client.process("passthrough", {"plate": frame}, sanitize_non_finite=True).outputs["image"]
    assert np.isfinite(out.channels["G"]).all()
    assert out.channels["G"][5, 6] == 0 and out.channels["G"][3, 4] == np.finfo(np.float16).max


@pytest.mark.parametrize(
    ("model", "params", "error", "match"),
    [
        pytest.param("no-such-model", {}, UnknownModelError, "serves", id="unknown-model"),
        pytest.param("passthrough", {"gain": 2}, ParameterError, "no parameter", id="unknown-param"),
        pytest.param("cleanup-classical", {"inpaint_radius": 0}, ParameterError, "minimum", id="below-range"),
        pytest.param("cleanup-classical", {"inpaint_radius": 1.5}, ParameterError, "whole", id="not-int"),
        pytest.param("cleanup-classical", {"align": "yes"}, ParameterError, "true/false", id="wrong-type"),
        pytest.param("cleanup-classical", {"inpaint_method": "magic"}, ParameterError, "one of", id="bad-choice"),
    ],
)
def test_bad_model_or_parameter(client: Client, model: str, params: dict[str, object], error: type, match: str) -> None:
    inputs = {"plate": _frame()}
    if model == "cleanup-classical":
        inputs["mask"] = Frame.from_array(
            np.zeros((48, 64), np.float32), names=("A",), display_window=Box(0, 0, 1919, 1079), frame_number=1001
        )
    with pytest.raises(error, match=match):
        client.process(model, inputs, params=params)  # type: ignore[arg-type]


def test_stream_to_an_unknown_model_is_refused_at_its_header(client: Client) -> None:
    frame = Frame.from_array(np.zeros((1080, 1920, 4), np.float32), frame_number=1)
    with pytest.raises(UnknownModelError, match="no model 'nope'"):
        client.process("nope", {"plate": frame}, transport="stream")


def test_plate_and_mask_of_different_windows(client: Client) -> None:
    plate = _frame(64, 48)
    mask = Frame.from_array(np.zeros((48, 60), np.float32), names=("A",), frame_number=1001)
    with pytest.raises(FrameError, match="windows"):
        client.process("cleanup-classical", {"plate": plate, "mask": mask}, single_frame=True)  # the server's own check


def test_missing_required_input_and_unknown_input(client: Client) -> None:
    with pytest.raises(FrameError, match="needs input"):
        client.process("cleanup-classical", {"plate": _frame()}, single_frame=True)  # the server's own check
    with pytest.raises(FrameError, match="takes no input"):
        client.process("passthrough", {"plate": _frame(), "matte": _frame()})


def test_missing_channels(client: Client) -> None:
    frame = Frame.from_array(np.zeros((48, 64), np.float32), names=("Y",), frame_number=1001)
    mask = Frame.from_array(np.zeros((48, 64), np.float32), names=("A",), frame_number=1001)
    with pytest.raises(FrameError, match=r"lacks channel\(s\) \['R', 'G', 'B'\]"):
        client.process("cleanup-classical", {"plate": frame, "mask": mask}, single_frame=True)  # the server's own check


def _protobuf_messages(call: ProcessCall, chunk_bytes: int) -> list[inference_pb2.ProcessStreamRequest]:
    """The stream as protobuf messages, the way a client in another language would build them."""
    raw = streams.stream_call(call, chunk_bytes=chunk_bytes)
    return [inference_pb2.ProcessStreamRequest.FromString(m) for m in raw]


def test_generated_stub_talks_to_process_stream(server: ServerProcess) -> None:
    """The fast chunk path is the .proto's wire format: protobuf messages in, protobuf out."""
    frame = _frame(200, 90)
    messages = _protobuf_messages(ProcessCall("passthrough", {"plate": [frame]}), chunk_bytes=5000)
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        replies = list(stub.ProcessStream(iter(messages), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30))
    assert replies[0].WhichOneof("part") == "header" and all(r.WhichOneof("part") == "chunk" for r in replies[1:])
    result = streams.gather_result(iter([r.SerializeToString() for r in replies]))
    assert_same_frame(result.outputs["image"], frame, attributes=False)


def test_truncated_stream_is_an_error_not_a_frame(server: ServerProcess) -> None:
    frame = _frame(256, 128)
    messages = _protobuf_messages(ProcessCall("passthrough", {"plate": [frame]}), chunk_bytes=4096)
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ProcessStream(iter(messages[:-3]), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ended early" in info.value.details()


def test_non_loopback_without_token_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plateforge_server", "--host", "0.0.0.0", "--port", "0", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "without a token" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_on_signal(sig: int) -> None:
    proc = start_server()
    with Client(proc.address, token=TOKEN) as client:
        client.process("passthrough", {"plate": _frame()})
    started = time.monotonic()
    assert proc.stop(sig) == 0
    assert time.monotonic() - started < 15
    assert not any("Traceback" in line for line in proc.stderr_lines)


def test_server_gone_mid_job_gives_a_clear_error() -> None:
    proc = start_server()
    client = Client(proc.address, token=TOKEN, retries=2, backoff=0.05, timeout=20)
    try:
        client.process("passthrough", {"plate": _frame()})
        proc.process.kill()
        proc.process.wait()
        with pytest.raises(ServerUnavailableError, match="unavailable"):
            client.process("passthrough", {"plate": _frame()})
    finally:
        client.close()


def test_client_retries_until_a_restarted_server_is_back() -> None:
    proc = start_server()
    port = proc.address.rsplit(":", 1)[1]
    proc.stop()
    # Nothing listens now; a client with retries keeps trying while the server comes back.
    client = Client(f"127.0.0.1:{port}", token=TOKEN, retries=8, backoff=0.25, timeout=30)
    import threading

    restarted: list[ServerProcess] = []
    threading.Timer(1.0, lambda: restarted.append(start_server("--port", port))).start()
    try:
        out = client.process("passthrough", {"plate": _frame()}).outputs["image"]
        assert_same_frame(out, _frame(), attributes=False)
    finally:
        client.close()
        time.sleep(0.1)
        for p in restarted:
            p.stop()
