"""Host UI built from what a model declares: one knob per parameter, one node input per image input.

A host (Nuke gizmo, Blender node) turns each :class:`KnobSpec` into its own widget and each
:class:`InputSlot` into a node input, and hands the widgets' values back through
:func:`params_from_knobs`, which checks them exactly as the server will. Nothing here knows a host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from plateforge.errors import ParameterError
from plateforge.models import ModelInfo, ParamKind, ParamSpec, ParamValue, resolve_params

__all__ = [
    "KNOB_PREFIX",
    "InputSlot",
    "KnobSpec",
    "input_slots",
    "knob_name",
    "knob_specs",
    "params_from_knobs",
]

#: Knob names are prefixed so a parameter called ``name`` or ``label`` cannot shadow a host's own knob.
KNOB_PREFIX = "pf_"
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")
#: Slider span for a number with no declared bound on that side (hosts need a finite slider).
_OPEN_SPAN = 100.0


@dataclass(frozen=True)
class KnobSpec:
    """One parameter as a host widget: its name, kind, default, slider range and choices."""

    name: str
    param: str
    kind: ParamKind
    label: str
    tooltip: str
    default: ParamValue
    #: Declared inclusive bounds (None: unbounded on that side); values outside are refused.
    minimum: float | None
    maximum: float | None
    #: A finite slider range covering the bounds and the default, for hosts whose sliders need one.
    slider: tuple[float, float] | None
    choices: tuple[str, ...]

    @property
    def default_index(self) -> int:
        """For a choice: the default's position in :attr:`choices` (what index-based menus store)."""
        return self.choices.index(str(self.default)) if self.kind == "choice" else 0


@dataclass(frozen=True)
class InputSlot:
    """One image input of a model as a node input, numbered in the model's declared order."""

    index: int
    name: str
    label: str
    required: bool
    temporal_radius: int


def knob_name(param: str) -> str:
    """The knob name of parameter ``param``: prefixed, and only letters, digits and underscores."""
    return KNOB_PREFIX + _NOT_IDENT.sub("_", param)


def _slider(spec: ParamSpec) -> tuple[float, float] | None:
    if spec.kind not in ("float", "int"):
        return None
    default = float(spec.default)
    low = spec.minimum if spec.minimum is not None else min(0.0, default, (spec.maximum or 0.0) - _OPEN_SPAN)
    high = spec.maximum if spec.maximum is not None else max(low + _OPEN_SPAN, default)
    return (float(low), float(high))


def knob_specs(info: ModelInfo) -> list[KnobSpec]:
    """A knob for every parameter ``info`` declares, in its order; two parameters whose knob names
    collide are a :class:`ParameterError` naming both."""
    knobs: list[KnobSpec] = []
    seen: dict[str, str] = {}
    for spec in info.parameters:
        name = knob_name(spec.name)
        if name in seen:
            raise ParameterError(
                f"model {info.name!r}: parameters {seen[name]!r} and {spec.name!r} would share the knob {name!r}"
            )
        seen[name] = spec.name
        knobs.append(
            KnobSpec(
                name=name,
                param=spec.name,
                kind=spec.kind,
                label=spec.label or spec.name.replace("_", " "),
                tooltip=spec.description,
                default=spec.default,
                minimum=spec.minimum,
                maximum=spec.maximum,
                slider=_slider(spec),
                choices=spec.choices,
            )
        )
    return knobs


def input_slots(info: ModelInfo) -> list[InputSlot]:
    """The model's image inputs as node inputs, in declared order (input 0 is the primary one)."""
    return [
        InputSlot(
            index=i,
            name=spec.name,
            label=spec.name if spec.required else f"{spec.name} (optional)",
            required=spec.required,
            temporal_radius=spec.temporal_radius,
        )
        for i, spec in enumerate(info.inputs)
    ]


def _from_host(spec: KnobSpec, value: object) -> object:
    """Undo what host widgets do to values: integers held as floats, menus held as indices."""
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if spec.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if spec.kind == "choice" and isinstance(value, (int, float)) and not isinstance(value, bool):
        index = int(value)
        if float(value) != index or not 0 <= index < len(spec.choices):
            raise ParameterError(
                f"parameter {spec.param!r}: menu entry {value!r} is not one of 0..{len(spec.choices) - 1}"
            )
        return spec.choices[index]
    if spec.kind == "bool" and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def params_from_knobs(info: ModelInfo, values: Mapping[str, object]) -> dict[str, ParamValue]:
    """Parameters for a call from knob values keyed by knob name; knobs not given take the
    declared default. Values are checked as the server checks them (:class:`ParameterError`)."""
    by_knob = {spec.name: spec for spec in knob_specs(info)}
    unknown = sorted(set(values) - set(by_knob))
    if unknown:
        raise ParameterError(f"model {info.name!r} has no knob(s) {unknown}; its knobs are {sorted(by_knob)}")
    given = {by_knob[name].param: _from_host(by_knob[name], value) for name, value in values.items()}
    return resolve_params(info, given)
