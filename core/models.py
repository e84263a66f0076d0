"""What a model declares about itself, as plain data both sides share.

The server's tools declare a :class:`ModelInfo`; the wire carries it as ``plateforge.v1.ModelInfo``;
hosts get it back as the same dataclass and build their UI from it (one widget per
:class:`ParamSpec`, one node input per :class:`InputSpec`). Parameter checking lives here too so a
host can refuse a bad value before it sends a frame, and the server refuses it again regardless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from plateforge.errors import ParameterError

__all__ = [
    "InputSpec",
    "ModelInfo",
    "OutputSpec",
    "ParamKind",
    "ParamSpec",
    "ParamValue",
    "resolve_params",
]

ParamKind = Literal["float", "int", "bool", "string", "choice"]
ParamValue = float | int | bool | str


@dataclass(frozen=True)
class ParamSpec:
    """One typed parameter: hosts show it as a knob, the server checks it on every call."""

    name: str
    kind: ParamKind
    default: ParamValue
    label: str = ""
    description: str = ""
    minimum: float | None = None  # inclusive; float and int only
    maximum: float | None = None  # inclusive; float and int only
    choices: tuple[str, ...] = ()  # for kind "choice"

    def check(self, value: object, *, model: str) -> ParamValue:
        """``value`` converted to this parameter's type, or :class:`ParameterError`."""
        where = f"model {model!r} parameter {self.name!r}"
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ParameterError(f"{where} expects true/false, got {value!r}")
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{where} expects a number, got {value!r}")
            if not math.isfinite(value):  # NaN and infinities have no int; a float param refuses them too
                raise ParameterError(f"{where} expects a finite number, got {value!r}")
            if self.kind == "int":
                if float(value) != int(value):
                    raise ParameterError(f"{where} expects a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
            if self.minimum is not None and value < self.minimum:
                raise ParameterError(f"{where} = {value} is below its minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ParameterError(f"{where} = {value} is above its maximum {self.maximum}")
            return value
        if not isinstance(value, str):
            raise ParameterError(f"{where} expects text, got {value!r}")
        if self.kind == "choice" and value not in self.choices:
            raise ParameterError(f"{where} = {value!r} is not one of {list(self.choices)}")
        return value


@dataclass(frozen=True)
class InputSpec:
    """One image input a model takes (``plate``, ``mask``, ``clean_plate`` …)."""

    name: str
    description: str = ""
    required: bool = True
    #: Channels the model reads from this input; an empty tuple means "any" (e.g. a mask).
    channels: tuple[str, ...] = ()
    #: Neighbouring frames the model reads on each side of the target frame (0: this frame only).
    temporal_radius: int = 0


@dataclass(frozen=True)
class OutputSpec:
    """One image output a model produces."""

    name: str
    description: str = ""
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """Everything a host needs to offer a model: its contract, as data."""

    name: str
    version: str
    tool: str
    description: str = ""
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    parameters: tuple[ParamSpec, ...] = ()
    #: Pixels of context a tile needs on each side (tiled inference overlaps tiles by this).
    padding: int = 0
    #: Short human-readable lineage: what the model learned from, under which licence.
    provenance: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise ParameterError(f"model {self.name!r} has no input {name!r}; it takes {[i.name for i in self.inputs]}")

    @property
    def temporal_radius(self) -> int:
        return max((i.temporal_radius for i in self.inputs), default=0)


def resolve_params(info: ModelInfo, given: Mapping[str, object]) -> dict[str, ParamValue]:
    """Defaults overlaid with ``given``, each checked; unknown names are refused by name."""
    known = {p.name: p for p in info.parameters}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(f"model {info.name!r} has no parameter(s) {unknown}; it takes {sorted(known) or 'none'}")
    resolved: dict[str, ParamValue] = {}
    for name, spec in known.items():
        resolved[name] = spec.check(given[name], model=info.name) if name in given else spec.default
    return resolved
