"""Knobs and node inputs from the ModelInfo a real server reports."""

from __future__ import annotations

import pytest

from plateforge.client import Client
from plateforge.errors import ParameterError
from plateforge.hosts.knobs import input_slots, knob_name, knob_specs, params_from_knobs
from plateforge.models import InputSpec, ModelInfo, ParamSpec


@pytest.fixture
def cleanup(client: object) -> ModelInfo:
    assert isinstance(client, Client)
    return client.model_info("cleanup-classical")


def test_knobs_follow_the_declared_parameters(cleanup: ModelInfo) -> None:
    knobs = {k.param: k for k in knob_specs(cleanup)}
    assert list(knobs) == [p.name for p in cleanup.parameters]
    radius = knobs["inpaint_radius"]
    assert (radius.name, radius.kind, radius.default, radius.minimum, radius.maximum) == (
        "pf_inpaint_radius",
        "int",
        5,
        1.0,
        32.0,
    )
    assert radius.slider == (1.0, 32.0) and radius.tooltip
    method = knobs["inpaint_method"]
    assert method.kind == "choice" and method.choices == ("telea", "ns") and method.default_index == 0
    assert knobs["align"].kind == "bool" and knobs["align"].slider is None


def test_inputs_are_named_as_the_model_declares(cleanup: ModelInfo) -> None:
    slots = input_slots(cleanup)
    assert [(s.index, s.name, s.required, s.temporal_radius) for s in slots] == [
        (0, "plate", True, 2),
        (1, "mask", True, 2),
    ]


def test_knob_values_come_back_as_checked_parameters(cleanup: ModelInfo) -> None:
    # Hosts hold ints as floats and menus as indices; defaults fill what is not given.
    params = params_from_knobs(cleanup, {"pf_inpaint_radius": 8.0, "pf_inpaint_method": 1, "pf_align": 0})
    assert params == {"temporal_radius": 2, "align": False, "flow": True, "inpaint_method": "ns", "inpaint_radius": 8}
    assert isinstance(params["inpaint_radius"], int)
    assert params_from_knobs(cleanup, {"pf_inpaint_method": "telea"})["inpaint_method"] == "telea"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"pf_inpaint_radius": 99}, "above its maximum 32", id="above-range"),
        pytest.param({"pf_inpaint_radius": 2.5}, "whole number", id="fractional-int"),
        pytest.param({"pf_inpaint_method": 7}, "menu entry 7", id="menu-index-out-of-range"),
        pytest.param({"pf_inpaint_method": "fast"}, "not one of", id="unknown-choice"),
        pytest.param({"pf_align": "yes"}, "true/false", id="bool-as-text"),
        pytest.param({"pf_nope": 1}, r"no knob\(s\) \['pf_nope'\]", id="unknown-knob"),
    ],
)
def test_bad_knob_values_are_refused(cleanup: ModelInfo, values: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        params_from_knobs(cleanup, values)


def test_open_ranges_get_a_finite_slider_and_names_are_made_safe() -> None:
    info = ModelInfo(
        name="m",
        version="1",
        tool="look",
        inputs=(InputSpec("plate"), InputSpec("normals", required=False)),
        parameters=(
            ParamSpec("gain", "float", 2.0, minimum=0.0),
            ParamSpec("offset", "float", -3.0),
            ParamSpec("look name", "string", "warm"),
        ),
    )
    knobs = {k.param: k for k in knob_specs(info)}
    assert knobs["gain"].slider == (0.0, 100.0)
    low, high = knobs["offset"].slider or (0.0, 0.0)
    assert low <= -3.0 < high
    assert knobs["look name"].name == knob_name("look name") == "pf_look_name"
    assert [s.label for s in input_slots(info)] == ["plate", "normals (optional)"]


def test_colliding_knob_names_are_refused() -> None:
    info = ModelInfo(
        name="m", version="1", tool="look", parameters=(ParamSpec("a b", "int", 1), ParamSpec("a_b", "int", 1))
    )
    with pytest.raises(ParameterError, match="would share the knob 'pf_a_b'"):
        knob_specs(info)
