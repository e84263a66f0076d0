from __future__ import annotations

import pytest

from plateforge.errors import ParameterError
from plateforge.models import InputSpec, ModelInfo, ParamSpec, resolve_params

INFO = ModelInfo(
    name="m",
    version="1",
    tool="t",
    inputs=(InputSpec("plate"),),
    parameters=(
        ParamSpec("gain", "float", 1.0, minimum=0.0, maximum=4.0),
        ParamSpec("radius", "int", 3, minimum=1, maximum=8),
        ParamSpec("flip", "bool", False),
        ParamSpec("label", "string", ""),
        ParamSpec("method", "choice", "telea", choices=("telea", "ns")),
    ),
)


def test_defaults() -> None:
    assert resolve_params(INFO, {}) == {"gain": 1.0, "radius": 3, "flip": False, "label": "", "method": "telea"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param({"gain": 2}, {"gain": 2.0}, id="int-for-float"),
        pytest.param({"radius": 5.0}, {"radius": 5}, id="whole-float-for-int"),
        pytest.param({"flip": True}, {"flip": True}, id="bool"),
        pytest.param({"method": "ns"}, {"method": "ns"}, id="choice"),
        pytest.param({"gain": 4.0, "radius": 1}, {"gain": 4.0, "radius": 1}, id="bounds-inclusive"),
    ],
)
def test_valid(given: dict[str, object], expected: dict[str, object]) -> None:
    resolved = resolve_params(INFO, given)
    for key, value in expected.items():
        assert resolved[key] == value and type(resolved[key]) is type(value)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        pytest.param({"nope": 1}, r"no parameter\(s\) \['nope'\]", id="unknown"),
        pytest.param({"gain": -0.1}, "below its minimum", id="below"),
        pytest.param({"gain": 4.5}, "above its maximum", id="above"),
        pytest.param({"gain": float("nan")}, "finite", id="nan"),
        pytest.param({"gain": "2"}, "expects a number", id="text-for-number"),
        pytest.param({"gain": True}, "expects a number", id="bool-for-number"),
        pytest.param({"radius": 2.5}, "whole number", id="fraction-for-int"),
        pytest.param({"flip": 1}, "true/false", id="int-for-bool"),
        pytest.param({"label": 3}, "expects text", id="int-for-text"),
        pytest.param({"method": "fast"}, "not one of", id="bad-choice"),
    ],
)
def test_invalid(given: dict[str, object], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        resolve_params(INFO, given)
