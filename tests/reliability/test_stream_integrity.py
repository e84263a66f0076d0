"""ProcessStream against a real server: chunks must cover every byte of every channel exactly once,
and a header is bounded (bytes, channels) before the server allocates anything for it.

Every case here was accepted by the server before: a stream whose chunks repeated or overlapped
with the right byte total was processed from uninitialised memory, and a 31 MB header of two
million 1x1 channels held 1.3 GB of the server's memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from plateforge import codec, streams
from plateforge.calls import ProcessCall
from plateforge.chunkwire import encode_chunk
from plateforge.frames import Box, Frame
from plateforge.v1 import frame_pb2, inference_pb2
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.reliability.helpers import memory_kib

pytestmark = pytest.mark.timeout(120)

AUTH = (("authorization", f"Bearer {TOKEN}"),)
PROCESS_STREAM = "/plateforge.v1.Inference/ProcessStream"


def _frame() -> Frame:
    rng = np.random.default_rng(18)
    return Frame.from_array(rng.random((32, 48, 4), dtype=np.float32).astype(np.float16), frame_number=1001)


def _send(server: ServerProcess, messages: list[bytes]) -> list[bytes]:
    with grpc.insecure_channel(
        server.address,
        options=[("grpc.max_send_message_length", 160 << 20), ("grpc.max_receive_message_length", 160 << 20)],
    ) as channel:
        call = channel.stream_stream(PROCESS_STREAM)
        return list(call(iter(messages), metadata=AUTH, timeout=60))


def _header(frame: Frame) -> bytes:
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}), with_data=False)
    return inference_pb2.ProcessStreamRequest(header=request).SerializeToString()


def _channel_bytes(frame: Frame, name: str) -> memoryview:
    return memoryview(codec.little_endian(frame.channels[name]).reshape(-1).view(np.uint8))


def _chunks_for(frame: Frame, *, skip: str) -> list[bytes]:
    """Every channel but ``skip`` in one chunk each (channel order as in the header)."""
    return [
        encode_chunk(0, 0, c, 0, _channel_bytes(frame, name)) for c, name in enumerate(frame.channels) if name != skip
    ]


def test_an_honest_stream_comes_back_exact(server: ServerProcess) -> None:
    frame = _frame()
    replies = _send(server, list(streams.stream_call(ProcessCall("passthrough", {"plate": [frame]}), chunk_bytes=500)))
    result = streams.gather_result(iter(replies))
    assert_same_frame(result.outputs["image"], frame, attributes=False)


@pytest.mark.parametrize(
    ("plan", "match"),
    [
        # Chunks of channel G (3072 bytes): the first half twice, the second half never.
        pytest.param([(0, 1536), (0, 1536)], r"channel 'G': bytes 0\.\.1536 arrive twice", id="repeated"),
        # Two overlapping chunks and a gap: the byte total is still the channel's size.
        pytest.param([(0, 2000), (1000, 2072)], r"channel 'G': bytes 1000\.\.2000 arrive twice", id="overlapping"),
        # Out of order, the same chunk again in place of the last.
        pytest.param(
            [(2048, 3072), (0, 1024), (2048, 3072)],
            r"channel 'G': bytes 2048\.\.3072 arrive twice",
            id="shuffled-repeat",
        ),
        # A gap at the start: the error names the bytes that never came.
        pytest.param([(1024, 3072)], r"channel 'G' is missing bytes 0\.\.1024", id="missing-start"),
    ],
)
def test_chunks_must_cover_each_channel_exactly_once(
    server: ServerProcess, plan: list[tuple[int, int]], match: str
) -> None:
    frame = _frame()
    green = _channel_bytes(frame, "G")
    assert green.nbytes == 3072
    index = list(frame.channels).index("G")
    chunks = [encode_chunk(0, 0, index, start, green[start:end]) for start, end in plan]
    with pytest.raises(grpc.RpcError) as info:
        _send(server, [_header(frame), *_chunks_for(frame, skip="G"), *chunks])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "input 'plate' frame 1001" in (info.value.details() or "")
    assert re.search(match, info.value.details() or ""), info.value.details()
    # The server is fine and still answers the same frame exactly.
    test_an_honest_stream_comes_back_exact(server)


def test_a_frame_never_carries_bytes_of_an_earlier_frame(server: ServerProcess) -> None:
    """The leak itself: a secret frame goes through, then a stream that repeats half of a channel
    of the same size. Before, that half came back holding whatever memory the server reused."""
    secret = _frame()
    _send(server, list(streams.stream_call(ProcessCall("passthrough", {"plate": [secret]}))))
    probe = Frame.from_array(np.zeros((32, 48, 4), np.float16), frame_number=1001)
    zeros = _channel_bytes(probe, "R")
    half = zeros.nbytes // 2
    repeated = [encode_chunk(0, 0, 0, 0, zeros[:half]), encode_chunk(0, 0, 0, 0, zeros[:half])]
    for _ in range(5):
        try:
            replies = _send(server, [_header(probe), *repeated, *_chunks_for(probe, skip="R")])
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            continue
        out = streams.gather_result(iter(replies)).outputs["image"]
        assert not np.any(out.channels["R"]), "the server answered with bytes the caller never sent"
        pytest.fail("a stream that repeated half a channel was accepted")


# -- header bounds ---------------------------------------------------------------------------------


def test_too_many_channels_in_a_frame_is_refused(server: ServerProcess) -> None:
    count = codec.MAX_CHANNELS_PER_FRAME + 1
    frame = Frame(
        channels={f"aov{k}.R": np.full((1, 1), k, np.float16) for k in range(count)},
        data_window=Box(0, 0, 0, 0),
        display_window=Box(0, 0, 0, 0),
        frame_number=1001,
    )
    with pytest.raises(grpc.RpcError) as info:
        _send(server, list(streams.stream_call(ProcessCall("passthrough", {"plate": [frame]}))))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert f"{count} channels" in details and str(codec.MAX_CHANNELS_PER_FRAME) in details, details
    assert "MAX_CHANNELS_PER_FRAME" in details


def test_a_header_over_the_byte_bound_is_refused(server: ServerProcess) -> None:
    frame = _frame().replace(attributes={"note": "x" * (streams.MAX_HEADER_BYTES + 10)})
    with pytest.raises(grpc.RpcError) as info:
        _send(server, list(streams.stream_call(ProcessCall("passthrough", {"plate": [frame]}))))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "MAX_HEADER_BYTES" in details and str(streams.MAX_HEADER_BYTES) in details, details


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while value > 0x7F:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
        return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _huge_header(channels: int) -> bytes:
    """A ProcessStream header whose one frame has ``channels`` 1x1 half channels, built as bytes
    (protobuf concatenates repeated fields), so the test spends no time building messages."""
    frame = frame_pb2.Frame(data_window=frame_pb2.Box2i(), display_window=frame_pb2.Box2i(), frame_number=1001)
    one = frame_pb2.Channel(name="aov.R123", pixel_type=frame_pb2.PIXEL_TYPE_HALF, byte_size=2).SerializeToString()
    number = frame_pb2.Frame.DESCRIPTOR.fields_by_name["channels"].number
    frame_bytes = frame.SerializeToString() + _field(number, one) * channels
    given = inference_pb2.InputFrames(name="plate").SerializeToString() + _field(
        inference_pb2.InputFrames.DESCRIPTOR.fields_by_name["frames"].number, frame_bytes
    )
    request = inference_pb2.ProcessRequest(model="passthrough").SerializeToString() + _field(
        inference_pb2.ProcessRequest.DESCRIPTOR.fields_by_name["inputs"].number, given
    )
    return _field(inference_pb2.ProcessStreamRequest.DESCRIPTOR.fields_by_name["header"].number, request)


@pytest.fixture
def fresh_server() -> Iterator[ServerProcess]:
    proc = start_server()
    yield proc
    proc.stop()


def test_a_31_mb_header_of_two_million_channels_holds_little_memory(fresh_server: ServerProcess) -> None:
    raw = _huge_header(2_000_000)
    assert len(raw) > 30_000_000
    pid = fresh_server.process.pid
    before = memory_kib(pid, "VmHWM")
    with pytest.raises(grpc.RpcError) as info:
        _send(fresh_server, [raw])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "MAX_HEADER_BYTES" in (info.value.details() or "")
    grown = memory_kib(pid, "VmHWM") - before
    # The message itself crosses gRPC (31 MB, held a few times over by its buffers); 1.3 GB before.
    assert grown < 250 * 1024, f"the server's peak RSS grew by {grown // 1024} MiB for one refused header"
    assert fresh_server.process.poll() is None
