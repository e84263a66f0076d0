"""Messages <-> objects: frames, model declarations, whole calls."""

from __future__ import annotations

import pytest

from plateforge import codec
from plateforge.calls import ProcessCall
from plateforge.errors import FrameError
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from tests.frames_for_tests import assert_same_frame, mixed_frame


@pytest.mark.parametrize(
    "number", [pytest.param(1001, id="numbered"), pytest.param(0, id="zero"), pytest.param(None, id="still")]
)
def test_frame_round_trip(number: int | None) -> None:
    frame = mixed_frame(number)
    assert_same_frame(codec.frame_from_proto(codec.frame_to_proto(frame)), frame)


def test_unary_round_trip_keeps_unset_target() -> None:
    call = ProcessCall("m", {"plate": [mixed_frame()]})
    assert codec.decode_call(codec.encode_call(call)).target_frame is None


def test_wrong_byte_count_is_refused() -> None:
    msg = codec.frame_to_proto(mixed_frame())
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


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_precision_round_trip(precision: str) -> None:
    call = ProcessCall(model="m", inputs={"plate": [mixed_frame()]}, precision=precision)  # type: ignore[arg-type]
    assert codec.decode_call(codec.encode_call(call)).precision == precision


def test_an_unknown_precision_is_refused() -> None:
    request = codec.encode_call(ProcessCall(model="m", inputs={"plate": [mixed_frame()]}))
    request.precision = 7  # type: ignore[assignment]  # a newer client's value
    with pytest.raises(FrameError, match="unknown precision 7"):
        codec.decode_call(request)
