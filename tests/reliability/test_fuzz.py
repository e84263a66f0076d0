"""Fuzz (hypothesis): the frame decoder, the chunk decoder, the stream gatherer, stream chunk
sequences (repeated, overlapping, out-of-order, missing chunks), the request checks, and every RPC
of a real server. Whatever arrives, the answer is a frame or a PlateforgeError with
a message, and over the wire a status a caller can act on: never INTERNAL or UNKNOWN (a bug),
never a dead server.

The damaged-file half of "bad input" is tests/reliability/test_damaged_files.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plateforge import codec, streams
from plateforge.calls import ProcessCall
from plateforge.chunkwire import decode_chunk, encode_chunk
from plateforge.client import Client
from plateforge.errors import PlateforgeError
from plateforge.frames import Frame
from plateforge.jobs_client import TrainingClient
from plateforge.v1 import frame_pb2, inference_pb2, training_pb2, training_pb2_grpc
from plateforge_server.checks import check_call
from plateforge_server.jobs._limits import CONFIG_BOUNDS, LIMITS
from plateforge_server.tools import passthrough
from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.training import TrainConfig
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.plateforge_server.training.helpers import write_pairs
from tests.reliability.rpcs import Rpc, all_rpcs
from tests.reliability.strategies import (
    ChunkPlan,
    chunk_plans,
    frames,
    messages,
    process_requests,
    start_training_requests,
    stream_frames,
)

pytestmark = pytest.mark.timeout(150)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the tree; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
AUTH = (("authorization", f"Bearer {TOKEN}"),)
#: What a caller may be told about a bad request. INTERNAL and UNKNOWN mean a bug in the server.
ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
}


def _clear(error: PlateforgeError) -> None:
    assert str(error).strip(), f"{type(error).__name__} without a message"


# -- in process ---------------------------------------------------------------------------------------


@FUZZ
@given(frames())
def test_frame_decoder(msg: frame_pb2.Frame) -> None:
    try:
        frame = codec.frame_from_proto(msg)
    except PlateforgeError as error:
        _clear(error)
        return
    assert not msg.shm_region, "a shared-memory reference must never decode as bytes"
    for channel, pixels in zip(msg.channels, frame.channels.values(), strict=True):
        assert pixels.nbytes == len(channel.data)


@FUZZ
@given(st.binary(max_size=600))
def test_request_decoder_on_raw_bytes(raw: bytes) -> None:
    try:
        msg = inference_pb2.ProcessRequest.FromString(raw)
    except DecodeError:
        return  # gRPC's deserialiser refuses these before a handler runs
    try:
        codec.decode_call(msg)
    except PlateforgeError as error:
        _clear(error)


@FUZZ
@given(st.binary(max_size=300))
def test_chunk_decoder_never_raises(raw: bytes) -> None:
    chunk = decode_chunk(raw)
    if chunk is not None:
        assert all(isinstance(v, int) and v >= 0 for v in chunk[:4])
        assert chunk[4].nbytes <= len(raw)


_chunks = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 5), st.integers(0, 600), st.binary(max_size=80)),
    max_size=12,
)


@FUZZ
@given(process_requests(with_data=False), _chunks, st.booleans())
def test_stream_gatherer(header: inference_pb2.ProcessRequest, chunks: list[tuple[int, ...]], garbage: bool) -> None:
    for given_input in header.inputs:
        for frame in given_input.frames:
            frame.ClearField("shm_region")
    raw = [inference_pb2.ProcessStreamRequest(header=header).SerializeToString()]
    raw += [encode_chunk(i, j, c, offset, memoryview(data)) for i, j, c, offset, data in chunks]  # type: ignore[misc]
    if garbage:
        raw.insert(1, b"\x0a\xff\xff\xff\x0f")  # a header field claiming 4 GiB
    try:
        call = streams.gather_call(iter(raw), max_bytes=1 << 20)
    except PlateforgeError as error:
        _clear(error)
        return
    assert call.non_finite is not None


def _stream_messages(frame: Frame, plan: list[ChunkPlan]) -> list[bytes]:
    """The serialised ProcessStream messages of ``frame`` cut as ``plan`` says."""
    header = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}), with_data=False)
    out = [inference_pb2.ProcessStreamRequest(header=header).SerializeToString()]
    flats = [codec.little_endian(p).reshape(-1).view(np.uint8) for p in frame.channels.values()]
    for channel, start, end, garbage in plan:
        data = np.full(end - start, 0x5A, np.uint8) if garbage else flats[channel][start:end]
        out.append(encode_chunk(0, 0, channel, start, memoryview(data)))
    return out


def _as_sent(frame: Frame, plan: list[ChunkPlan]) -> Frame:
    """``frame`` with the bytes its plan's garbage chunks carried: what an accepted stream holds
    (a garbage copy can be the only chunk left for its bytes once the original is dropped)."""
    channels = {}
    for k, (name, pixels) in enumerate(frame.channels.items()):
        flat = codec.little_endian(pixels).reshape(-1).view(np.uint8).copy()
        for channel, start, end, garbage in plan:
            if channel == k and garbage:
                flat[start:end] = 0x5A
        channels[name] = flat.view(codec.little_endian(pixels).dtype).reshape(pixels.shape).astype(pixels.dtype)
    return frame.replace(channels=channels)


def _exactly_once(frame: Frame, plan: list[ChunkPlan]) -> bool:
    """The oracle: whether the chunks write every byte of every channel exactly once."""
    counts = [np.zeros(p.nbytes, np.int32) for p in frame.channels.values()]
    for channel, start, end, _ in plan:
        counts[channel][start:end] += 1
    return all(bool((n == 1).all()) for n in counts)


@FUZZ
@given(st.data())
def test_stream_chunk_sequences(data: st.DataObject) -> None:
    """A stream is accepted exactly when its chunks cover every byte once, and then it is the
    frame sent, bit for bit; anything else is an INVALID_ARGUMENT error naming the channel."""
    frame = data.draw(stream_frames())
    plan = data.draw(chunk_plans([p.nbytes for p in frame.channels.values()]))
    messages = iter(_stream_messages(frame, plan))
    if _exactly_once(frame, plan):
        call = streams.gather_call(messages)
        assert_same_frame(call.inputs["plate"][0], _as_sent(frame, plan))
        return
    with pytest.raises(PlateforgeError) as info:
        streams.gather_call(messages)
    assert info.value.grpc_code == "INVALID_ARGUMENT", f"{type(info.value).__name__}: {info.value}"
    assert "channel '" in str(info.value), str(info.value)


@FUZZ
@given(process_requests())
def test_request_checks(request: inference_pb2.ProcessRequest) -> None:
    info = cleanup_classical.INFO if request.model == "cleanup-classical" else passthrough.INFO
    try:
        tool_call = check_call(info, codec.decode_call(request), max_frame_pixels=10_000)
    except PlateforgeError as error:
        _clear(error)
        return
    for frames_of_input in tool_call.inputs.values():
        for frame in frames_of_input:
            assert frame.width * frame.height <= 10_000


# -- every RPC of a real server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ServerProcess]:
    proc = start_server("--max-frame-pixels", "100000")
    yield proc
    assert proc.process.poll() is None, "the server died during the fuzz"
    proc.stop()


def _requests(rpc: Rpc) -> st.SearchStrategy[list[bytes]]:
    if rpc.name == "Process":
        near_valid = process_requests()
        return st.one_of(near_valid, near_valid, near_valid, messages(rpc.descriptor.input_type)).map(
            lambda m: [m.SerializeToString()]
        )
    if rpc.name == "ProcessStream":
        header = process_requests(with_data=False).map(
            lambda h: inference_pb2.ProcessStreamRequest(header=h).SerializeToString()
        )
        anything = messages(rpc.descriptor.input_type).map(lambda m: m.SerializeToString())
        chunks = _chunks.map(lambda cs: [encode_chunk(i, j, c, o, memoryview(d)) for i, j, c, o, d in cs])  # type: ignore[misc]
        return st.tuples(st.one_of(header, anything), st.lists(anything, max_size=2), chunks).map(
            lambda t: [t[0], *t[1], *t[2]]
        )
    single = messages(rpc.descriptor.input_type).map(lambda m: [m.SerializeToString()])
    if rpc.descriptor.client_streaming:
        return st.lists(messages(rpc.descriptor.input_type), max_size=4).map(
            lambda ms: [m.SerializeToString() for m in ms]
        )
    return single


def test_stream_chunk_sequences_over_the_wire(fuzz_server: ServerProcess) -> None:
    """The same property through a real server's ProcessStream: every accepted frame comes back
    as sent; every refused one is INVALID_ARGUMENT; the server stays up."""
    with grpc.insecure_channel(fuzz_server.address) as channel:
        process_stream = channel.stream_stream("/plateforge.v1.Inference/ProcessStream")

        @settings(FUZZ, max_examples=80)
        @given(st.data())
        def run(data: st.DataObject) -> None:
            frame = data.draw(stream_frames())
            plan = data.draw(chunk_plans([p.nbytes for p in frame.channels.values()]))
            valid = _exactly_once(frame, plan)
            try:
                replies = list(process_stream(iter(_stream_messages(frame, plan)), metadata=AUTH, timeout=30))
            except grpc.RpcError as error:
                assert not valid, f"a stream covering every byte once was refused: {error.details()}"
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{error.code()}: {error.details()}"
                return
            assert valid, f"chunks {plan} do not cover every byte exactly once, and were accepted"
            result = streams.gather_result(iter(replies))
            assert_same_frame(result.outputs["image"], _as_sent(frame, plan), attributes=False)

        run()
    assert fuzz_server.process.poll() is None


@pytest.mark.parametrize("rpc", [pytest.param(r, id=r.id) for r in all_rpcs()])
def test_every_rpc_answers_bad_input_clearly(fuzz_server: ServerProcess, rpc: Rpc) -> None:
    seen: dict[str, int] = {}
    with grpc.insecure_channel(fuzz_server.address) as channel:

        @settings(FUZZ, max_examples=150 if rpc.service.endswith("Inference") else 60)
        @given(_requests(rpc))
        def run(requests: list[bytes]) -> None:
            try:
                rpc.invoke(channel, requests, metadata=AUTH, timeout=30)
                seen["OK"] = seen.get("OK", 0) + 1
            except grpc.RpcError as error:
                code = error.code()
                seen[code.name] = seen.get(code.name, 0) + 1
                assert code in ALLOWED, f"{rpc.path}: {code.name}: {error.details()}"
                assert (error.details() or "").strip(), f"{rpc.path}: {code.name} without a message"

        run()
    with Client(fuzz_server.address, token=TOKEN, retries=0) as client:
        assert client.health(), f"the server stopped serving after fuzzing {rpc.path}: {seen}"


# -- StartTraining configs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def training_fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, Path]]:
    base = tmp_path_factory.mktemp("config-fuzz")
    manifest = write_pairs(base / "footage", frames=2, size=32)
    args = ("--data-root", str(base / "footage"), "--jobs-dir", str(base / "jobs"), "--models-dir", str(base / "m"))
    proc = start_server(*args)
    yield proc, manifest, base
    proc.stop()


def test_start_training_configs_are_accepted_within_bounds_or_refused(
    training_fuzz_server: tuple[ServerProcess, Path, Path],
) -> None:
    """Any config is either accepted, every field within its documented bound, or INVALID_ARGUMENT
    with a short message naming the problem; and ListJobs answers afterwards, on this server and
    on one restarted on the same jobs, every job readable (none BROKEN)."""
    proc, manifest, base = training_fuzz_server
    fields = tuple(f.name for f in dataclasses.fields(TrainConfig))
    seen: dict[str, int] = {}
    with grpc.insecure_channel(proc.address) as channel, Client(proc.address, token=TOKEN, retries=0) as client:
        stub, jobs = training_pb2_grpc.TrainingStub(channel), TrainingClient(client)

        @settings(FUZZ, max_examples=120)
        @given(start_training_requests(dataset=str(manifest), fields=fields))
        def run(request: training_pb2.StartTrainingRequest) -> None:
            try:
                job = stub.StartTraining(request, metadata=AUTH, timeout=30)
            except grpc.RpcError as error:
                seen[error.code().name] = seen.get(error.code().name, 0) + 1
                details = error.details() or ""
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), details[:300])
                assert details.strip() and len(details) < 3000, details[:300]
                return
            seen["OK"] = seen.get("OK", 0) + 1
            jobs.cancel(job.id)  # the queue stays short
            config = json.loads(job.config_json)
            for name, bound in CONFIG_BOUNDS.items():
                bound.check(name, config[name])  # raises when out of bounds
            assert config["batch"] * config["crop"] ** 2 <= LIMITS.max_step_pixels
            assert 0 <= job.step <= job.steps <= 1_000_000

        run()
        assert seen.get("OK", 0) > 0 and seen.get("INVALID_ARGUMENT", 0) > 0, seen
        listed = jobs.list_jobs(page_size=7)
        assert len(listed) == seen["OK"] and all(j.state != "BROKEN" for j in listed)
    proc.stop()
    again = start_server("--jobs-dir", str(base / "jobs"), "--models-dir", str(base / "m"))
    try:
        with Client(again.address, token=TOKEN, retries=0) as client:
            relisted = TrainingClient(client).list_jobs()
        assert sorted(j.id for j in relisted) == sorted(j.id for j in listed)
        assert all(j.state != "BROKEN" for j in relisted), [j.error for j in relisted if j.state == "BROKEN"]
    finally:
        again.stop()
