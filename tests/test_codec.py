from __future__ import annotations

import numpy as np
import pytest

from plateforge import codec
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.chunkwire import encode_chunk
from plateforge.errors import FrameError, FrameTooLargeError
from plateforge.frames import Box, Frame, has_non_finite
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge.provenance import pixels_sha256


def _frame(number: int | None = 1001) -> Frame:
    rng = np.random.default_rng(3)
    return Frame(
        channels={
            "R": rng.standard_normal((5, 7)).astype(np.float16),
            "Z": rng.standard_normal((5, 7)).astype(np.float32),
            "id": rng.integers(0, 2**32 - 1, (5, 7), dtype=np.uint32),
            "BY": rng.standard_normal((2, 3)).astype(np.float16),
        },
        data_window=Box(-3, 10, 3, 14),
        display_window=Box(0, 0, 99, 49),
        frame_number=number,
        colour_space="lin_rec709",
        attributes={"a": "b"},
        sampling={"BY": (2, 2)},
        pixel_aspect=2.0,
    )


def _same(a: Frame, b: Frame) -> None:
    assert list(a.channels) == list(b.channels)
    for name in a.channels:
        assert a.channels[name].dtype == b.channels[name].dtype
        assert a.channels[name].tobytes() == b.channels[name].tobytes()
    assert (a.data_window, a.display_window, a.frame_number, a.colour_space, a.attributes, a.sampling) == (
        b.data_window,
        b.display_window,
        b.frame_number,
        b.colour_space,
        b.attributes,
        b.sampling,
    )
    assert a.pixel_aspect == b.pixel_aspect


@pytest.mark.parametrize(
    "number", [pytest.param(1001, id="numbered"), pytest.param(0, id="zero"), pytest.param(None, id="still")]
)
def test_frame_round_trip(number: int | None) -> None:
    frame = _frame(number)
    _same(codec.frame_from_proto(codec.frame_to_proto(frame)), frame)


@pytest.mark.parametrize("chunk", [1, 13, 4096, 1 << 22])
def test_stream_round_trip(chunk: int) -> None:
    call = ProcessCall(
        "m", {"plate": [_frame(1000), _frame(1001)], "mask": [_frame(None)]}, {"k": 2.5}, target_frame=1001
    )
    back = codec.gather_call(iter(list(codec.stream_call(call, chunk_bytes=chunk))))
    assert back.model == "m" and back.params == {"k": 2.5} and back.target_frame == 1001
    for name in call.inputs:
        for got, want in zip(back.inputs[name], call.inputs[name], strict=True):
            _same(got, want)
    result = ProcessResult({"image": _frame()}, {"plateforge/model": "m"})
    again = codec.gather_result(iter(list(codec.stream_result(result, chunk_bytes=chunk))))
    _same(again.outputs["image"], result.outputs["image"])
    assert again.provenance == result.provenance


def test_unary_round_trip_keeps_unset_target() -> None:
    call = ProcessCall("m", {"plate": [_frame()]})
    assert codec.decode_call(codec.encode_call(call)).target_frame is None


def test_short_stream_is_refused() -> None:
    messages = list(codec.stream_call(ProcessCall("m", {"plate": [_frame()]}), chunk_bytes=8))
    with pytest.raises(FrameError, match="ended early"):
        codec.gather_call(iter(messages[:-1]))


def test_chunk_past_the_end_is_refused() -> None:
    messages = list(codec.stream_call(ProcessCall("m", {"plate": [_frame()]}), chunk_bytes=8))
    messages[1] = encode_chunk(0, 0, 0, 10_000, memoryview(b"12345678"))
    with pytest.raises(FrameError, match="past the channel's end"):
        codec.gather_call(iter(messages))


def test_stream_must_start_with_header() -> None:
    messages = list(codec.stream_call(ProcessCall("m", {"plate": [_frame()]})))
    with pytest.raises(FrameError, match="start with its header"):
        codec.gather_call(iter(messages[1:]))


def test_announced_size_is_bounded() -> None:
    messages = list(codec.stream_call(ProcessCall("m", {"plate": [_frame()]})))
    with pytest.raises(FrameTooLargeError):
        codec.gather_call(iter(messages), max_bytes=10)


def test_wrong_byte_count_is_refused() -> None:
    msg = codec.frame_to_proto(_frame())
    msg.channels[0].data = msg.channels[0].data[:-2]
    with pytest.raises(FrameError, match="carries"):
        codec.frame_from_proto(msg)


def test_model_info_round_trip() -> None:
    info = ModelInfo(
        name="cleanup",
        version="2",
        tool="cleanup",
        description="d",
        inputs=(InputSpec("plate", "p", True, ("R", "G", "B"), 2), InputSpec("mask", required=False)),
        outputs=(OutputSpec("image", "o", ("R", "G", "B")),),
        parameters=(
            ParamSpec("gain", "float", 1.0, "Gain", "g", 0.0, 4.0),
            ParamSpec("n", "int", 3, minimum=1),
            ParamSpec("on", "bool", True),
            ParamSpec("m", "choice", "a", choices=("a", "b")),
            ParamSpec("s", "string", "x"),
        ),
        padding=16,
        provenance="trained on nothing",
        attributes={"k": "v"},
    )
    assert codec.info_from_proto(codec.info_to_proto(info)) == info


@pytest.mark.parametrize("chunk", [pytest.param(8, id="aligned"), pytest.param(7, id="misaligned")])
def test_stream_scan_and_digest_match_the_whole_frame_passes(chunk: int) -> None:
    target, other = _frame(1001), _frame(1000)
    bad = other.channels["Z"].copy()
    bad[4, 6] = np.inf
    other = other.replace(channels={**other.channels, "Z": bad})
    call = ProcessCall("m", {"plate": [other, target]}, target_frame=1001)
    messages = list(codec.stream_call(call, chunk_bytes=chunk))
    back = codec.gather_call(iter(messages), inspect_header=lambda header: [(0, 1)])
    assert back.non_finite == {("plate", 0): ["Z"], ("plate", 1): []}
    assert back.pixel_digests == {("plate", 1): pixels_sha256(target)}
    # Chunks out of order still assemble; the digest then comes from the whole frame.
    shuffled = [messages[0], *reversed(messages[1:])]
    again = codec.gather_call(iter(shuffled), inspect_header=lambda header: [(0, 1)])
    assert again.pixel_digests == {("plate", 1): pixels_sha256(target)}
    assert again.non_finite == back.non_finite


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        pytest.param(np.float16, np.nan, True, id="half-nan"),
        pytest.param(np.float16, -np.inf, True, id="half-neg-inf"),
        pytest.param(np.float16, 65504.0, False, id="half-max"),
        pytest.param(np.float32, np.inf, True, id="float-inf"),
        pytest.param(np.float32, -3.4e38, False, id="float-lowest"),
        pytest.param(np.uint32, 0xFFFFFFFF, False, id="uint-all-ones"),
    ],
)
def test_has_non_finite(dtype: type, value: float, expected: bool) -> None:
    pixels = np.zeros((300, 1000), dtype=dtype)
    pixels[299, 999] = value  # the last sample of the last block
    assert has_non_finite(pixels) is expected
    assert has_non_finite(pixels[:, 999:]) is expected  # a strided view
