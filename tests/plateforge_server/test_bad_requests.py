"""A caller's mistakes are INVALID_ARGUMENT naming the field, never INTERNAL; error messages that
echo a request stay short; and without the token every method, real or not, is UNAUTHENTICATED.
Real server process on loopback, raw stubs so that no client-side check gets in the way."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from plateforge import codec, streams
from plateforge.calls import ProcessCall
from plateforge.frames import Frame
from plateforge.v1 import inference_pb2, inference_pb2_grpc, models_pb2, training_pb2, training_pb2_grpc
from plateforge_server.interceptors import MAX_DETAILS
from tests.conftest import TOKEN, ServerProcess

pytestmark = pytest.mark.timeout(120)

AUTH = (("authorization", f"Bearer {TOKEN}"),)


def _plate() -> Frame:
    return Frame.from_array(np.zeros((8, 8, 3), np.float16), names=("R", "G", "B"), frame_number=1)


def _refused(call: object, *args: object, **kw: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args, metadata=AUTH, timeout=30, **kw)  # type: ignore[operator]
        if not hasattr(result, "SerializeToString"):
            list(result)  # a stream: its status comes with its end
    return info.value


def _start(channel: grpc.Channel, **fields: str) -> grpc.RpcError:
    request = training_pb2.StartTrainingRequest(**{"dataset": "/tmp/pairs.json", "tool": "look", **fields})
    return _refused(training_pb2_grpc.TrainingStub(channel).StartTraining, request)


# -- INVALID_ARGUMENT naming the field ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"dataset": "/tmp/pairs\x00.json"}, "StartTrainingRequest.dataset", id="dataset-path"),
        pytest.param({"model_name": "sh010\x00"}, "StartTrainingRequest.model_name", id="model-name"),
        pytest.param(
            {"config_json": '{"name": "a\\u0000b"}', "tool": "lo\x00ok"}, "StartTrainingRequest.tool", id="tool"
        ),
    ],
)
def test_a_nul_byte_in_a_training_request(server: ServerProcess, fields: dict[str, str], named: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        error = _start(channel, **fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert named in (error.details() or "") and "NUL" in (error.details() or "")


def test_a_nul_byte_in_a_process_request_unary_and_streamed(server: ServerProcess) -> None:
    call = ProcessCall("pass\x00through", {"plate": [_plate()]})
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        unary = _refused(stub.Process, codec.encode_call(call))
        streamed = _refused(channel.stream_stream("/plateforge.v1.Inference/ProcessStream"), streams.stream_call(call))
    assert unary.code() == streamed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ProcessRequest.model" in (unary.details() or "")
    assert "ProcessStreamRequest.header.model" in (streamed.details() or "")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_non_finite_number_for_an_integer_parameter(server: ServerProcess, value: float) -> None:
    request = codec.encode_call(ProcessCall("cleanup-classical", {"plate": [_plate()]}))
    request.params["inpaint_radius"].CopyFrom(models_pb2.ParamValue(number=value))
    with grpc.insecure_channel(server.address) as channel:
        error = _refused(inference_pb2_grpc.InferenceStub(channel).Process, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "'inpaint_radius'" in (error.details() or "") and "finite" in (error.details() or "")


@pytest.mark.parametrize(
    "config_json",
    [
        pytest.param("[" * 100_000, id="100000-unclosed"),
        pytest.param('{"steps": ' + "[" * 40 + "1" + "]" * 40 + "}", id="40-deep-valid-json"),
        pytest.param('{"a": ' * 5000 + "1" + "}" * 5000, id="5000-deep-objects"),
    ],
)
def test_deeply_nested_config_json(server: ServerProcess, config_json: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        error = _start(channel, config_json=config_json)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "StartTrainingRequest.config_json" in (error.details() or "")


# -- bounded messages -------------------------------------------------------------------------------------


def test_an_error_that_echoes_a_long_request_is_cut(server: ServerProcess) -> None:
    long_name = "m" * 200_000
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        error = _refused(stub.Process, codec.encode_call(ProcessCall(long_name, {"plate": [_plate()]})))
        training = _start(channel, config_json='{"' + "n" * 200_000 + '": 1}')  # an unknown field, named back
    assert error.code() == grpc.StatusCode.NOT_FOUND
    for refused in (error, training):
        details = refused.details() or ""
        assert len(details) <= MAX_DETAILS + 40, len(details)
    assert "more characters)" in (error.details() or "")  # the echoed name, cut by the interceptor
    # config_json is refused by its size bound before anything in it is echoed: it says how long it was.
    assert training.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "200_007 characters" in (training.details() or "")


# -- no token, no map of the methods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "/plateforge.v1.Inference/NoSuchMethod",
        "/plateforge.v1.NoSuchService/Process",
        "/grpc.reflection.v1alpha.ServerReflection/Nope",
        "/x/y",
    ],
)
def test_unknown_methods_answer_unauthenticated_without_the_token(server: ServerProcess, method: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as anonymous:
            call(b"", timeout=10)
        with pytest.raises(grpc.RpcError) as wrong:
            call(b"", metadata=(("authorization", "Bearer wrong"),), timeout=10)
        with pytest.raises(grpc.RpcError) as holder:
            call(b"", metadata=AUTH, timeout=10)
    assert anonymous.value.code() == wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "token" in (anonymous.value.details() or "")
    assert holder.value.code() == grpc.StatusCode.UNIMPLEMENTED  # a token holder may learn what exists


def test_listmodels_still_answers_a_token_holder(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        reply = inference_pb2_grpc.InferenceStub(channel).ListModels(
            inference_pb2.ListModelsRequest(), metadata=AUTH, timeout=10
        )
    assert "passthrough" in {m.name for m in reply.models}
