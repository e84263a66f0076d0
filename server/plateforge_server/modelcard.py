"""Saving and loading learned models: weights in safetensors, with their model card.

A model is a folder::

    model.safetensors   the weights; the card as JSON in its metadata ("plateforge.card")
    card.json           the same card plus weights_sha256, the hash of model.safetensors

The card says what the model is (name, version, tool, net and its config, the inputs, outputs
and parameters it declares) and what it learned from (every source file with its hash, licence
and rights holder; the base model and its licence; the code version; the training parameters;
the metrics). Its format is defined once, in :mod:`plateforge.modelcards`, which the host reads
without torch; this module adds the typed :class:`ModelCard` and the torch side: saving tensors,
and loading them only after the file has been proved to be the one the card describes.

Both files are written atomically (a temporary file in the folder, then ``os.replace``): the
weights first, then the card. A crash in between leaves a card whose hash does not match the new
weights, which :func:`verify_model` reports; never a half-written file under either name.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

import plateforge
from plateforge import atomic
from plateforge.errors import ModelIntegrityError, UsageError
from plateforge.exr import StrPath
from plateforge.manifests import Contributor
from plateforge.modelcards import (
    CARD_FILE,
    CARD_KEY,
    CARD_SCHEMA,
    KNOWN_CARD_SCHEMAS,
    WEIGHTS_FILE,
    check_card,
    model_files,
    read_model_card,
)
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge_server.roots import check_model_name
from plateforge_server.safetensors_files import save_file

__all__ = [
    "CARD_SCHEMA",
    "KNOWN_CARD_SCHEMAS",
    "BaseModel",
    "CodeVersion",
    "Contributor",
    "ModelCard",
    "NetSpec",
    "ParentModel",
    "SourceRecord",
    "load_card",
    "load_weights",
    "save_model",
    "verify_model",
]


@dataclass(frozen=True)
class NetSpec:
    """The network: its architecture's name and the config that rebuilds it (nanoGPT-style)."""

    arch: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRecord:
    """One file the model learned from (see :func:`plateforge_server.datasets.check_for_training`)."""

    path: str
    sha256: str
    licence: str
    rights_holder: str
    #: The manifest's permitted uses of the file (empty: not recorded, as on older cards).
    permitted_uses: tuple[str, ...] = ()
    #: Whose work the file holds, from its manifest source (written to the card only when any).
    contributors: tuple[Contributor, ...] = ()


@dataclass(frozen=True)
class ParentModel:
    """The plateforge model whose weights a fine-tune started from (``plateforge train --init``)."""

    name: str
    version: str
    #: The parent's ``weights_sha256``: what its outputs record as ``modelHash``.
    sha256: str


@dataclass(frozen=True)
class BaseModel:
    """The model this one was fine-tuned from (e.g. a local diffusers checkpoint)."""

    name: str
    licence: str
    sha256: str


@dataclass(frozen=True)
class CodeVersion:
    """The code that trained the model."""

    plateforge: str
    #: Commit of the plateforge checkout, when running from one; None for an installed wheel.
    git_commit: str | None = None

    @classmethod
    def current(cls) -> CodeVersion:
        return cls(plateforge=plateforge.__version__, git_commit=_git_commit())


def _git_commit() -> str | None:
    """HEAD of the git checkout plateforge runs from, if it runs from its own checkout."""
    package = Path(plateforge.__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(top) != 2 or (Path(top[0]) / "core" / "plateforge" / "__init__.py").resolve() != package / "__init__.py":
        return None  # some other repository that happens to contain the installed package
    return top[1]


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ModelCard:
    """What a learned model is and what it learned from (schema ``plateforge.modelcard/1``)."""

    name: str
    version: str
    tool: str
    net: NetSpec
    description: str = ""
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    parameters: tuple[ParamSpec, ...] = ()
    #: Pixels of context a tile needs on each side (ModelInfo.padding).
    padding: int = 0
    sources: tuple[SourceRecord, ...] = ()
    base_model: BaseModel | None = None
    #: The model a fine-tune started from; None for a run from a fresh net.
    parent: ParentModel | None = None
    code_version: CodeVersion = field(default_factory=CodeVersion.current)
    #: Training parameters (steps, crop size, learning rate, seed, dataset name …), JSON values.
    training: dict[str, Any] = field(default_factory=dict)
    #: Evaluation results (e.g. PSNR on held-out frames), JSON values.
    metrics: dict[str, Any] = field(default_factory=dict)
    #: When the card was made, UTC, ISO 8601 to the second.
    created: str = field(default_factory=_utc_now)
    #: SHA-256 of model.safetensors; set by :func:`save_model` in card.json, None inside the file.
    weights_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data, in the format :func:`plateforge.modelcards.check_card` checks."""
        card: dict[str, Any] = {"schema": CARD_SCHEMA}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            card[item.name] = _plain(value)
        # Optional keys (plateforge.modelcards): left out when empty, so such cards read as before.
        if card["parent"] is None:
            del card["parent"]
        for source in card["sources"]:
            if not source["contributors"]:
                del source["contributors"]
        return card

    @classmethod
    def from_dict(cls, card: Mapping[str, Any], *, source: str = "model card") -> ModelCard:
        """A card from its JSON data, checked first (unknown schemas and keys are refused)."""
        try:
            copied = json.loads(json.dumps(card))
        except (TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{source}: not JSON data ({exc})") from None
        data = check_card(copied, source=source)
        base = data["base_model"]
        return cls(
            name=data["name"],
            version=data["version"],
            tool=data["tool"],
            net=NetSpec(**data["net"]),
            description=data["description"],
            inputs=tuple(InputSpec(**_tuples(i)) for i in data["inputs"]),
            outputs=tuple(OutputSpec(**_tuples(o)) for o in data["outputs"]),
            parameters=tuple(ParamSpec(**_tuples(p)) for p in data["parameters"]),
            padding=data["padding"],
            sources=tuple(
                SourceRecord(
                    **_tuples({k: v for k, v in s.items() if k != "contributors"}),
                    contributors=tuple(Contributor(**c) for c in s.get("contributors", [])),
                )
                for s in data["sources"]
            ),
            base_model=BaseModel(**base) if base is not None else None,
            parent=ParentModel(**data["parent"]) if "parent" in data else None,
            code_version=CodeVersion(**data["code_version"]),
            training=data["training"],
            metrics=data["metrics"],
            created=data["created"],
            weights_sha256=data["weights_sha256"],
        )

    def to_model_info(self) -> ModelInfo:
        """The :class:`ModelInfo` a server offers for this model, with a one-line lineage."""
        return ModelInfo(
            name=self.name,
            version=self.version,
            tool=self.tool,
            description=self.description,
            inputs=self.inputs,
            outputs=self.outputs,
            parameters=self.parameters,
            padding=self.padding,
            provenance=self.lineage(),
            attributes={"weights_sha256": self.weights_sha256} if self.weights_sha256 else {},
        )

    def lineage(self) -> str:
        """One line: what the model learned from and under which licences."""
        licences = sorted({s.licence for s in self.sources})
        holders = sorted({s.rights_holder for s in self.sources})
        text = f"trained on {len(self.sources)} file(s)"
        if licences:
            text += f" licensed {', '.join(licences)} by {', '.join(holders)}"
        if self.base_model is not None:
            text += f"; base model {self.base_model.name} ({self.base_model.licence})"
        if self.parent is not None:
            text += f"; fine-tuned from {self.parent.name}@{self.parent.version}"
        return text


def _plain(value: object) -> Any:
    """Dataclasses, tuples and dicts as JSON-ready dicts, lists and values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _tuples(entry: Mapping[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the spec dataclasses hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}


# -- saving ---------------------------------------------------------------------------------


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(folder: StrPath, *, tensors: Mapping[str, torch.Tensor], card: ModelCard) -> Path:
    """Write ``folder/model.safetensors`` (``tensors``, the card in its metadata) and
    ``folder/card.json`` (the card with ``weights_sha256``), each atomically; return the path
    of ``model.safetensors``. The folder is created if needed; existing files are replaced."""
    bad = sorted(str(k) for k, v in tensors.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor))
    if bad:
        raise UsageError(f"save_model needs a map of names to torch tensors; {bad} are not")
    target = Path(folder)
    weights, card_file = target / WEIGHTS_FILE, target / CARD_FILE
    inside = dataclasses.replace(card, weights_sha256=None).to_dict()
    try:
        text = json.dumps(inside, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the card of model {card.name!r} holds a value JSON cannot hold: {exc}") from None
    check_card(inside, source=str(weights))
    metadata = {CARD_KEY: text, "format": "pt"}
    target.mkdir(parents=True, exist_ok=True)
    contiguous = {name: tensor.detach().contiguous() for name, tensor in tensors.items()}
    with atomic.atomic_path(weights, durable=True) as temp:
        save_file(contiguous, temp, metadata=metadata)  # sorted metadata: same card, same bytes
        digest = _file_sha256(temp)
    complete = dataclasses.replace(card, weights_sha256=digest).to_dict()
    with atomic.atomic_path(card_file, durable=True) as temp:
        temp.write_text(json.dumps(complete, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return weights


# -- loading --------------------------------------------------------------------------------


def load_card(folder: StrPath) -> ModelCard:
    """The card of a model folder (or a path to either of its files), from ``card.json``,
    checked against the card inside ``model.safetensors``. Does not hash the weights."""
    _, card_file = model_files(folder)
    return ModelCard.from_dict(read_model_card(folder, verify=False), source=str(card_file))


def verify_model(folder: StrPath) -> ModelCard:
    """:func:`load_card`, and the weights file's hash recomputed and compared with the card's;
    :class:`ModelIntegrityError` naming the file when it is missing, damaged or changed."""
    _, card_file = model_files(folder)
    return ModelCard.from_dict(read_model_card(folder, verify=True), source=str(card_file))


def load_weights(folder: StrPath, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a verified model, on ``device``. The bytes are read once, and the tensors
    are built from exactly the bytes whose hash was checked."""
    card = load_card(folder)
    weights, _ = model_files(folder)
    try:
        data = weights.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read '{weights}': {exc.strerror or exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != card.weights_sha256:
        raise ModelIntegrityError(
            f"'{weights}' has changed since it was saved: its sha256 is {actual}, "
            f"'{CARD_FILE}' records {card.weights_sha256}"
        )
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelIntegrityError(f"'{weights}' cannot be loaded: {exc}") from exc
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def publish_model(folder: Path, models_dir: Path) -> Path:
    """Copy a verified model folder to ``models_dir/<name>/<version>/`` and return that folder.

    The copy is made beside the destination and renamed into place, so a server scanning
    ``models_dir`` never sees half a model. The same model published twice is a no-op; a
    different model under an existing name and version is refused, naming both folders.
    """
    card = verify_model(folder)
    # A card's name and version become folders: never let them climb out of models_dir.
    check_model_name(card.name, "model name")
    check_model_name(card.version, "model version")
    target = Path(models_dir) / card.name / card.version
    if target.exists():
        existing = verify_model(target)
        if existing.weights_sha256 == card.weights_sha256:
            return target
        raise ModelIntegrityError(
            f"cannot publish {folder}: {target} already holds a different {card.name}@{card.version}; "
            "train under another name or version"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{card.version}.", dir=target.parent))
    try:
        for name in ("model.safetensors", "card.json"):
            shutil.copy2(Path(folder) / name, staging / name)
        atomic.publish_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
