"""ProcessStream encoding: chunked round trips, scanning and hashing on arrival, bad streams."""

from __future__ import annotations

import numpy as np
import pytest

from plateforge import streams
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.chunkwire import encode_chunk
from plateforge.errors import FrameError, FrameTooLargeError
from plateforge.provenance import pixels_digest
from tests.frames_for_tests import assert_same_frame, mixed_frame


@pytest.mark.parametrize("chunk", [1, 13, 4096, 1 << 22])
def test_stream_round_trip(chunk: int) -> None:
    call = ProcessCall(
        "m",
        {"plate": [mixed_frame(1000), mixed_frame(1001)], "mask": [mixed_frame(None)]},
        {"k": 2.5},
        target_frame=1001,
    )
    back = streams.gather_call(iter(list(streams.stream_call(call, chunk_bytes=chunk))))
    assert back.model == "m" and back.params == {"k": 2.5} and back.target_frame == 1001
    for name in call.inputs:
        for got, want in zip(back.inputs[name], call.inputs[name], strict=True):
            assert_same_frame(got, want)
    result = ProcessResult({"image": mixed_frame()}, {"plateforge/model": "m"})
    again = streams.gather_result(iter(list(streams.stream_result(result, chunk_bytes=chunk))))
    assert_same_frame(again.outputs["image"], result.outputs["image"])
    assert again.provenance == result.provenance


def test_short_stream_is_refused() -> None:
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [mixed_frame()]}), chunk_bytes=8))
    with pytest.raises(FrameError, match="ended early"):
        streams.gather_call(iter(messages[:-1]))


def test_chunk_past_the_end_is_refused() -> None:
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [mixed_frame()]}), chunk_bytes=8))
    messages[1] = encode_chunk(0, 0, 0, 10_000, memoryview(b"12345678"))
    with pytest.raises(FrameError, match="past the channel's end"):
        streams.gather_call(iter(messages))


def test_stream_must_start_with_header() -> None:
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [mixed_frame()]})))
    with pytest.raises(FrameError, match="start with its header"):
        streams.gather_call(iter(messages[1:]))


def test_announced_size_is_bounded() -> None:
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [mixed_frame()]})))
    with pytest.raises(FrameTooLargeError):
        streams.gather_call(iter(messages), max_bytes=10)


@pytest.mark.parametrize("chunk", [pytest.param(8, id="aligned"), pytest.param(7, id="misaligned")])
def test_stream_scan_and_digest_match_the_whole_frame_passes(chunk: int) -> None:
    target, other = mixed_frame(1001), mixed_frame(1000)
    bad = other.channels["Z"].copy()
    bad[4, 6] = np.inf
    other = other.replace(channels={**other.channels, "Z": bad})
    call = ProcessCall("m", {"plate": [other, target]}, target_frame=1001)
    messages = list(streams.stream_call(call, chunk_bytes=chunk))
    back = streams.gather_call(iter(messages), inspect_header=lambda header: [(0, 1)])
    assert back.non_finite == {("plate", 0): ["Z"], ("plate", 1): []}
    assert back.pixel_digests == {("plate", 1): pixels_digest(target)}
    # Chunks out of order still assemble; the digest then comes from the whole frame.
    shuffled = [messages[0], *reversed(messages[1:])]
    again = streams.gather_call(iter(shuffled), inspect_header=lambda header: [(0, 1)])
    assert again.pixel_digests == {("plate", 1): pixels_digest(target)}
    assert again.non_finite == back.non_finite


def test_a_gap_between_chunks_is_named() -> None:
    frame = mixed_frame()
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [frame]}), chunk_bytes=8))
    dropped = [m for k, m in enumerate(messages) if k != 3]  # the third chunk of the first channel
    first = next(iter(frame.channels))
    with pytest.raises(FrameError, match=rf"channel '{first}' is missing bytes 16\.\.24"):
        streams.gather_call(iter(dropped))


def test_too_many_channels_in_a_response_header_is_refused() -> None:
    from plateforge import codec

    header = streams.inference_pb2.ProcessResponse()
    out = header.outputs.add(name="image")
    for k in range(codec.MAX_CHANNELS_PER_FRAME + 1):
        out.frame.channels.add(name=f"c{k}", pixel_type=1, byte_size=2)
    raw = streams.inference_pb2.ProcessStreamResponse(header=header).SerializeToString()
    with pytest.raises(FrameError, match="MAX_CHANNELS_PER_FRAME"):
        streams.gather_result(iter([raw]))


@pytest.mark.parametrize("mistake", ["repeat", "short"])
def test_a_refused_stream_leaves_no_hashing_thread(mistake: str) -> None:
    """A stream refused mid-way (or cut short) must stop the thread hashing its frame: one left
    waiting per abandoned stream is a leak a hostile client can repeat."""
    import threading

    def digesting() -> int:
        return sum(t.name == "plateforge-digest" and t.is_alive() for t in threading.enumerate())

    before = digesting()
    messages = list(streams.stream_call(ProcessCall("m", {"plate": [mixed_frame()]}), chunk_bytes=8))
    sent = [*messages[:3], messages[2], *messages[3:]] if mistake == "repeat" else messages[:-1]
    for _ in range(5):
        with pytest.raises(FrameError):
            streams.gather_call(iter(sent), inspect_header=lambda header: [(0, 0)])
    assert digesting() == before
