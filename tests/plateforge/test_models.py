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


# -- model references -------------------------------------------------------------------------

from plateforge.errors import UnknownModelError, UsageError  # noqa: E402
from plateforge.models import ModelRef, parse_model_ref, select_model  # noqa: E402


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        pytest.param("cleanup-classical", ModelRef("cleanup-classical"), id="name"),
        pytest.param("cleanup-classical@1", ModelRef("cleanup-classical", "1"), id="name-version"),
        pytest.param("sh010_clean+v2@step2000", ModelRef("sh010_clean+v2", "step2000"), id="trained"),
        pytest.param(" look@1.10 ", ModelRef("look", "1.10"), id="spaces-around"),
    ],
)
def test_model_references_parse(text: str, ref: ModelRef) -> None:
    assert parse_model_ref(text) == ref
    assert parse_model_ref(str(ref)) == ref  # printed as it is read


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("@1", id="no-name"),
        pytest.param("look@", id="no-version"),
        pytest.param("look@1@2", id="two-ats"),
        pytest.param("lo ok", id="space"),
        pytest.param("../look", id="path"),
        pytest.param("-look", id="leading-dash"),
    ],
)
def test_bad_model_references_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="write NAME or NAME@VERSION"):
        parse_model_ref(text)


SERVED = [
    ModelInfo(name="look", version="step200", tool="look"),
    ModelInfo(name="look", version="step1000", tool="look"),
    ModelInfo(name="look", version="step900", tool="look"),
    ModelInfo(name="other", version="1", tool="t"),
]


def test_a_bare_name_selects_the_newest_version_in_natural_order() -> None:
    assert select_model(SERVED, "look").version == "step1000"
    assert select_model(SERVED, "look@step200").version == "step200"


def test_an_unknown_version_lists_the_versions() -> None:
    with pytest.raises(UnknownModelError) as caught:
        select_model(SERVED, "look@step5", where="host:1")
    assert str(caught.value) == (
        "model 'look' has no version 'step5' on host:1; it has look@step200, look@step900, look@step1000"
    )
    with pytest.raises(UnknownModelError, match=r"no model 'nope' on host:1; it serves \['look', 'other'\]"):
        select_model(SERVED, "nope", where="host:1")


# -- the one --param grammar (process, train, the training runner, the bench, hosts' config fields) --

from plateforge.models import parse_param, parse_params  # noqa: E402


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("steps=10", ("steps", 10), id="int"),
        pytest.param("lr=1e-4", ("lr", 1e-4), id="float"),
        pytest.param("flips=false", ("flips", False), id="bool"),
        pytest.param("size=medium", ("size", "medium"), id="text"),
        pytest.param("flips=TRUE", ("flips", True), id="bool-any-case"),
        pytest.param('tag="1001"', ("tag", "1001"), id="quoted-text"),
        pytest.param("note=a=b", ("note", "a=b"), id="text-with-equals"),
    ],
)
def test_parse_param(text: str, expected: tuple[str, object]) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["steps", "=3", "my lr=1", "lr="])
def test_parse_param_needs_name_value(text: str) -> None:
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_param(text)


@pytest.mark.parametrize("text", ["lr=nan", "lr=inf", "lr=-Infinity"])
def test_parse_param_refuses_non_finite_numbers(text: str) -> None:
    with pytest.raises(UsageError, match="not a finite number"):
        parse_param(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param("  lr=1e-4   crop=256 ", {"lr": 1e-4, "crop": 256}, id="spaces"),
        pytest.param('tag="1001" flips=FALSE', {"tag": "1001", "flips": False}, id="quoted-and-bool"),
        pytest.param('note="two  words" size=medium', {"note": "two  words", "size": "medium"}, id="quoted-spaces"),
    ],
)
def test_parse_params(text: str, expected: dict[str, object]) -> None:
    """A list as a host's config field holds it: each word read as --param reads it."""
    got = parse_params(text)
    assert got == expected
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]  # 1 is not True, 256 not 256.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("lr=1 lr=2", "lr is given twice", id="twice"),
        pytest.param('note="open', "double quote is not closed", id="unclosed-quote"),
        pytest.param("lr=1 crop", "NAME=VALUE", id="no-value"),
        pytest.param("lr=nan", "not a finite number", id="nan"),
    ],
)
def test_parse_params_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_params(text)
