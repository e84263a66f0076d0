"""What a model runs in (device, precision): announced in ListModels, honoured per request,
recorded in every output's provenance."""

from __future__ import annotations

import pytest

from plateforge.calls import ProcessCall
from plateforge.provenance import DEVICE_ATTRIBUTE, PRECISION_ATTRIBUTE, PREFIX
from plateforge_server.checks import check_call
from plateforge_server.registry import Registry
from plateforge_server.tools.base import Compute
from tests.frames_for_tests import mixed_frame

pytest.importorskip("torch")
from plateforge_server.tools.learned import net_compute


@pytest.mark.parametrize(
    ("device", "precision", "used"),
    [
        pytest.param("cuda", "auto", Compute("cuda", "fp16"), id="gpu-auto"),
        pytest.param("cuda:1", "fp32", Compute("cuda:1", "fp32"), id="gpu-fp32"),
        pytest.param("cpu", "auto", Compute("cpu", "fp32"), id="cpu-auto"),
        pytest.param("cpu", "fp32", Compute("cpu", "fp32"), id="cpu-fp32"),
    ],
)
def test_a_net_runs_fp16_on_a_gpu_unless_fp32_is_asked(device: str, precision: str, used: Compute) -> None:
    assert net_compute(device=device, precision=precision) == used  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_outputs_record_what_they_were_made_in(precision: str) -> None:
    registry = Registry(device="cuda")  # classical tools run numpy on the CPU whatever the server has
    (info,) = [i for i in registry.infos() if i.name == "passthrough"]
    assert (info.attributes[DEVICE_ATTRIBUTE], info.attributes[PRECISION_ATTRIBUTE]) == ("cpu", "fp32")
    with registry.use("passthrough") as model:
        call = ProcessCall(model="passthrough", inputs={"plate": [mixed_frame()]}, precision=precision)  # type: ignore[arg-type]
        tool_call = check_call(model.info, call)
        assert tool_call.precision == precision
        (out,) = model.tool.run(model.state, tool_call).values()
    assert out.attributes[PREFIX + DEVICE_ATTRIBUTE] == "cpu" and out.attributes[PREFIX + PRECISION_ATTRIBUTE] == "fp32"
