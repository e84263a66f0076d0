"""Training checkpoints: one safetensors file per checkpoint, written atomically, the last few kept.

A checkpoint is ``ckpt-{step:08d}.safetensors`` in the run's ``checkpoints/`` folder. Format
(schema ``plateforge.checkpoint/1``):

* **tensors** -- ``model/<name>`` for every entry of the net's ``state_dict``;
  ``optim/<param index>/<key>`` for every non-scalar tensor of the optimiser's per-parameter
  state (AdamW's ``exp_avg``, ``exp_avg_sq``); ``rng/<name>`` for random-generator states kept as
  byte tensors (torch's CPU and CUDA generators).
* **metadata** (text, as safetensors requires) -- ``schema``; ``step``; ``state``: one JSON object
  holding the training config (``TrainConfig.to_dict``), the net config, the optimiser's
  ``param_groups`` and scalar state (AdamW's ``step`` counts, with their dtypes), the crop
  generator's state, the grad scaler's state, the loss history and anything else the engine
  passes; ``tensors_sha256``: the SHA-256 of every tensor's name, dtype, shape and bytes, so a
  file damaged anywhere (not only truncated) is refused.

Writing goes to a hidden temporary file in the same folder, is flushed to disk, then renamed over
the final name (``os.replace``): a crash or a kill leaves either the complete new checkpoint or
none, never a half-written file under a checkpoint's name. A full disk (``ENOSPC``) leaves the
previous checkpoints as they were and raises :class:`CheckpointError` saying so. After a
successful write only the newest ``keep`` checkpoints stay.

:func:`load_checkpoint` refuses a damaged file with a :class:`CheckpointError` naming it;
:func:`latest` skips damaged files (logging a warning that names them) and returns the newest
valid checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import safetensors
import safetensors.torch
import torch

from plateforge import atomic
from plateforge.errors import PlateforgeError
from plateforge.exr import StrPath
from plateforge_server.safetensors_files import save_file

__all__ = [
    "KNOWN_SCHEMAS",
    "SCHEMA",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_name",
    "latest",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest",
    "save_checkpoint",
    "tensors_sha256",
]

log = logging.getLogger(__name__)

#: The schema this version writes.
SCHEMA: Final = "plateforge.checkpoint/1"
#: Schemas this version reads; anything else is refused with this list.
KNOWN_SCHEMAS: Final = (SCHEMA,)
_NAME = re.compile(r"ckpt-(\d{8,})\.safetensors")


class CheckpointError(PlateforgeError):
    """A checkpoint cannot be written (disk full, permissions) or read (damaged, unknown schema).
    The message names the file."""

    grpc_code = "FAILED_PRECONDITION"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    step: int
    #: The net's state_dict.
    model: dict[str, torch.Tensor]
    #: The optimiser's state_dict, as ``torch.optim.Optimizer.load_state_dict`` takes it.
    optimizer: dict[str, Any]
    #: Random-generator states saved as tensors (``torch_cpu``, ``cuda/0`` …).
    rng: dict[str, torch.Tensor]
    #: The JSON state the engine saved (config, crop generator, scaler, loss history …).
    state: dict[str, Any]


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:08d}.safetensors"


def list_checkpoints(folder: StrPath) -> list[tuple[int, Path]]:
    """``(step, path)`` of every file named like a checkpoint in ``folder``, newest first (unchecked)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


# -- saving ---------------------------------------------------------------------------------------


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """A digest of tensors' names, types, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _flatten_optimizer(state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state_dict as (tensors for the file, JSON for the metadata)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        kept: dict[str, Any] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                tensors[f"optim/{index}/{key}"] = value
            elif isinstance(value, torch.Tensor):
                kept[key] = {"scalar": value.item(), "dtype": str(value.dtype).removeprefix("torch.")}
            else:
                kept[key] = {"value": value}
        scalars[str(index)] = kept
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: Mapping[str, torch.Tensor], saved: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index, entries in saved["scalars"].items():
        restored: dict[str, Any] = {}
        for key, entry in entries.items():
            if "scalar" in entry:
                restored[key] = torch.tensor(entry["scalar"], dtype=getattr(torch, entry["dtype"]))
            else:
                restored[key] = entry["value"]
        state[int(index)] = restored
    for name, tensor in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = tensor
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    folder: StrPath,
    *,
    step: int,
    model: Mapping[str, torch.Tensor],
    optimizer: Mapping[str, Any],
    rng: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``folder/ckpt-{step:08d}.safetensors`` atomically and keep the newest ``keep``; return its path.

    ``model``: the net's state_dict; ``optimizer``: the optimiser's state_dict; ``rng``: generator
    states as tensors; ``state``: JSON-safe data. :class:`CheckpointError` if it cannot be written
    (the previous checkpoints are untouched).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    target = root / checkpoint_name(step)
    optim_tensors, optim_json = _flatten_optimizer(optimizer)
    tensors = {f"model/{k}": v for k, v in model.items()}
    tensors.update(optim_tensors)
    tensors.update({f"rng/{k}": v for k, v in rng.items()})
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        state_text = json.dumps({**state, "optimizer": optim_json}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{target}': the training state is not JSON data ({exc})") from None
    metadata = {
        "schema": SCHEMA,
        "step": str(step),
        "state": state_text,
        "tensors_sha256": tensors_sha256(tensors),
        "format": "pt",
    }
    try:
        with atomic.atomic_path(target, durable=True) as temp:
            save_file(tensors, temp, metadata=metadata)  # sorted metadata: same state, same bytes
    except (OSError, safetensors.SafetensorError) as exc:
        previous = next((p for s, p in list_checkpoints(root) if s != step), None)
        kept = f"; the previous checkpoint '{previous}' is intact" if previous else "; no earlier checkpoint exists"
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
            message = f"disk full while writing checkpoint '{target}'{kept}; free some space and resume"
            raise CheckpointError(message) from exc
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CheckpointError(f"cannot write checkpoint '{target}': {reason}{kept}") from exc
    for _, old in list_checkpoints(root)[max(1, keep) :]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


# -- loading --------------------------------------------------------------------------------------


def load_checkpoint(path: StrPath, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Read and verify a checkpoint; :class:`CheckpointError` naming the file if it is damaged,
    truncated, of an unknown schema, or not the step its name says."""
    file = Path(path)
    try:
        with safetensors.safe_open(str(file), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        tensors = safetensors.torch.load_file(str(file))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint '{file}' does not exist") from None
    except (OSError, safetensors.SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint '{file}' is damaged or truncated and cannot be read: {exc}") from None
    schema = metadata.get("schema")
    if schema not in KNOWN_SCHEMAS:
        raise CheckpointError(
            f"checkpoint '{file}' has schema {schema!r}, not one this code reads; known schemas: {list(KNOWN_SCHEMAS)}"
        )
    if metadata.get("tensors_sha256") != tensors_sha256(tensors):
        raise CheckpointError(f"checkpoint '{file}' is damaged: its tensors do not match the hash recorded in it")
    try:
        step = int(metadata["step"])
        state = json.loads(metadata["state"])
        optimizer_json = state.pop("optimizer")
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint '{file}' has damaged metadata ({exc!r})") from None
    match = _NAME.fullmatch(file.name)
    if match and int(match.group(1)) != step:
        raise CheckpointError(f"checkpoint '{file}' holds step {step}, not the step its name says")
    model = {k.removeprefix("model/"): v.to(device) for k, v in tensors.items() if k.startswith("model/")}
    optim = {k: v.to(device) for k, v in tensors.items() if k.startswith("optim/")}
    rng = {k.removeprefix("rng/"): v for k, v in tensors.items() if k.startswith("rng/")}
    return Checkpoint(file, step, model, _unflatten_optimizer(optim, optimizer_json), rng, state)


def load_latest(folder: StrPath, *, device: str | torch.device = "cpu") -> Checkpoint | None:
    """The newest checkpoint in ``folder`` that loads; damaged newer ones are skipped with a warning
    naming them. None when there is none."""
    damaged: list[str] = []
    for _, path in list_checkpoints(folder):
        try:
            checkpoint = load_checkpoint(path, device=device)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
            damaged.append(path.name)
            continue
        if damaged:
            log.warning("falling back to checkpoint '%s' (newer %s could not be read)", path, ", ".join(damaged))
        return checkpoint
    if damaged:
        log.warning("no readable checkpoint in '%s' (damaged: %s); starting afresh", folder, ", ".join(damaged))
    return None


def latest(folder: StrPath) -> Path | None:
    """The path of the newest valid checkpoint in ``folder`` (see :func:`load_latest`), or None."""
    checkpoint = load_latest(folder)
    return checkpoint.path if checkpoint is not None else None
