"""What a model declares about itself, as plain data both sides share.

The server's tools declare a :class:`ModelInfo`; the wire carries it as ``plateforge.v1.ModelInfo``;
hosts get it back as the same dataclass and build their UI from it (one widget per
:class:`ParamSpec`, one node input per :class:`InputSpec`). Parameter checking lives here too so a
host can refuse a bad value before it sends a frame, and the server refuses it again regardless.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from plateforge.errors import ParameterError, UnknownModelError, UsageError
from plateforge.provenance import MODEL_HASH_ATTRIBUTE

__all__ = [
    "InputSpec",
    "ModelInfo",
    "ModelRef",
    "OutputSpec",
    "ParamKind",
    "ParamSpec",
    "ParamValue",
    "parse_model_ref",
    "parse_param",
    "parse_params",
    "resolve_params",
    "select_model",
    "version_key",
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
    #: sha256 of what defines the model's behaviour (a learned model's weights, a classical
    #: tool's source): what output frames record as ``modelHash``. Empty when the server did not
    #: say (the registry fills it; see :attr:`served_hash` for servers older than the field).
    model_hash: str = ""

    @property
    def served_hash(self) -> str:
        """The model's hash as the server gave it: the typed field, else the ``model_hash``
        attribute servers sent before the field existed; empty when neither."""
        return self.model_hash or self.attributes.get(MODEL_HASH_ATTRIBUTE, "")

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise ParameterError(f"model {self.name!r} has no input {name!r}; it takes {[i.name for i in self.inputs]}")

    @property
    def temporal_radius(self) -> int:
        return max((i.temporal_radius for i in self.inputs), default=0)


_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_param(text: str) -> tuple[str, ParamValue]:
    """One ``--param NAME=VALUE`` as every command takes it (process, train, the bench, the
    Blender Train node's extra field). VALUE is read as true/false (any case), then an integer,
    then a finite number, else text; a value in double quotes is always text (``tag="1001"``).
    :class:`UsageError` names what is wrong."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not _PARAM_NAME.match(name) or raw == "":
        raise UsageError(f"--param {text!r}: write NAME=VALUE (a name of letters, digits and _; e.g. lr=1e-4)")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return name, raw[1:-1]
    if raw.lower() in ("true", "false"):
        return name, raw.lower() == "true"
    try:
        return name, int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return name, raw
    if not math.isfinite(number):
        raise UsageError(f"--param {name}: {raw!r} is not a finite number")
    return name, number


#: One word of a parameter list: runs of anything but space and '"', and "quoted texts" (kept
#: with their quotes, so parse_param reads them as text), as a shell splits words.
_WORD = re.compile(r'(?:[^\s"]|"[^"]*")+')


def parse_params(text: str) -> dict[str, ParamValue]:
    """A space-separated list of ``NAME=VALUE`` (a host's config field, a farm job's parameter),
    each read by :func:`parse_param`. A double-quoted value may hold spaces (``note="two words"``);
    a name given twice is refused by name rather than the last one silently winning."""
    words: list[str] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        match = _WORD.match(text, pos)
        if match is None:  # only an unmatched double quote stops a word from matching
            raise UsageError(f'parameters {text!r}: a double quote is not closed (write NAME="a text")')
        words.append(match.group())
        pos = match.end()
    params: dict[str, ParamValue] = {}
    for word in words:
        name, value = parse_param(word)
        if name in params:
            raise UsageError(f"parameters {text!r}: {name} is given twice")
        params[name] = value
    return params


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


#: A model name or version as the server accepts them (server/plateforge_server/roots.py, check_model_name): letters,
#: digits, '.', '_', '+', '-', starting with a letter or digit. Never '@', so NAME@VERSION splits once.
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


@dataclass(frozen=True)
class ModelRef:
    """A model reference, ``NAME`` or ``NAME@VERSION``, exactly as ``plateforge models`` prints it.

    Every command (``process --model``, provenance, farm templates) and every host takes this one
    spelling; an empty ``version`` means "the newest version the server has".
    """

    name: str
    version: str = ""

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def parse_model_ref(text: str) -> ModelRef:
    """``NAME`` or ``NAME@VERSION`` as a :class:`ModelRef`; anything else is a :class:`UsageError`
    naming what was expected."""
    name, sep, version = text.strip().partition("@")
    if not _PART.match(name) or (sep and not _PART.match(version)):
        raise UsageError(
            f"model {text!r}: write NAME or NAME@VERSION as `plateforge models` lists them "
            "(letters, digits, '.', '_', '+', '-'), e.g. cleanup-classical or cleanup-classical@1"
        )
    return ModelRef(name, version)


def select_model(infos: Iterable[ModelInfo], ref: ModelRef | str, *, where: str = "the server") -> ModelInfo:
    """The model ``ref`` names among ``infos``: the given version, or the newest one.

    :class:`UnknownModelError` names what is served: the versions of ``ref.name`` when only the
    version is unknown, else every model.
    """
    if isinstance(ref, str):
        ref = parse_model_ref(ref)
    served = list(infos)
    versions = sorted((i for i in served if i.name == ref.name), key=lambda i: version_key(i.version))
    if not versions:
        names = sorted({i.name for i in served})
        raise UnknownModelError(f"no model {ref.name!r} on {where}; it serves {names}")
    if not ref.version:
        return versions[-1]
    for info in versions:
        if info.version == ref.version:
            return info
    listed = ", ".join(f"{i.name}@{i.version}" for i in versions)
    raise UnknownModelError(f"model {ref.name!r} has no version {ref.version!r} on {where}; it has {listed}")


def version_key(version: str) -> tuple[int | str, ...]:
    """Natural order of versions, as the server picks the newest: ``step200`` < ``step1000``,
    ``1.9`` < ``1.10`` (text and numbers alternate)."""
    return tuple(int(part) if k % 2 else part for k, part in enumerate(re.split(r"(\d+)", version)))
