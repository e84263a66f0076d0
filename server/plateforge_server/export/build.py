"""One export: a served learned model's folder -> the files of one format, in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch

from plateforge.errors import UsageError
from plateforge.exports import ONNX_SUFFIX, TORCHSCRIPT_SUFFIX
from plateforge.modelcards import CARD_FILE
from plateforge_server.export.card import export_metadata
from plateforge_server.export.flame import FlameModule, flame_inputs, flame_sidecar
from plateforge_server.export.functions import FrameFunction, frame_function
from plateforge_server.export.licence import check_export_permitted
from plateforge_server.export.nuke import catfilecreator_settings
from plateforge_server.export.onnx_writer import onnx_bytes
from plateforge_server.export.readme import export_readme
from plateforge_server.export.torchscript_writer import torchscript_bytes
from plateforge_server.tools.learned import LearnedState, tool_module_for

__all__ = ["FORMATS", "Export", "export_model", "load_for_export"]

#: The formats :func:`export_model` writes.
FORMATS: Final = ("onnx", "torchscript", "flame", "nuke")
#: The traced example's side: not a multiple of any stride, so no size is frozen by accident.
_EXAMPLE_SIDE: Final = 37


@dataclass(frozen=True)
class Export:
    """The files of one export, name -> bytes."""

    model: str
    model_hash: str
    files: dict[str, bytes]


def load_for_export(folder: Path) -> LearnedState:
    """The model in ``folder`` loaded on the CPU in float32 (weights verified against its card)."""
    state: LearnedState = tool_module_for(folder).load(device="cpu")
    return state


def _example(function: FrameFunction) -> torch.Tensor:
    side = max(_EXAMPLE_SIDE, function.min_size + 5)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, len(function.input_channels), side, side + 3, generator=generator)


def export_model(folder: Path, *, fmt: str) -> Export:
    """Every file of the export of the model in ``folder`` as ``fmt`` (one of :data:`FORMATS`).

    Refuses (:class:`~plateforge.errors.LicenceError`) a model whose sources do not all permit
    distribution, naming the source, and (:class:`UsageError`) a net that cannot be exported.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    state = load_for_export(Path(folder))
    card = state.card
    check_export_permitted(card)
    function = frame_function(card, state.net.float().eval()).eval()
    metadata = export_metadata(card, function)
    stem = card.name
    example = _example(function)
    files: dict[str, bytes] = {}
    flame_rows: list[tuple[str, str, str]] = []
    nuke = None
    card_json = (json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    if fmt == "onnx":
        files[stem + ONNX_SUFFIX] = onnx_bytes(
            function, [example], input_names=["input"], output_names=["output"], metadata=metadata, doc=card.description
        )
    elif fmt == "flame":
        inputs = flame_inputs(function)
        parts, at = [], 0
        for item in inputs:
            parts.append(example[:, at : at + len(item.channels)])
            at += len(item.channels)
        files[stem + ONNX_SUFFIX] = onnx_bytes(
            FlameModule(function),
            parts,
            input_names=[i.name for i in inputs],
            output_names=[g.source for g in function.outputs],
            metadata=metadata,
            doc=card.description,
        )
        files[stem + ".json"] = (json.dumps(flame_sidecar(card, function), indent=2) + "\n").encode()
        flame_rows = [(i.name, i.kind, i.token) for i in inputs]
    else:
        files[stem + TORCHSCRIPT_SUFFIX] = torchscript_bytes(function, example)
        files[CARD_FILE] = card_json
        if fmt == "nuke":
            settings = catfilecreator_settings(
                function,
                torchscript=stem + TORCHSCRIPT_SUFFIX,
                cat=stem + ".cat",
                model_id=f"{card.name}@{card.version}",
            )
            files["catfilecreator.json"] = (json.dumps(settings, indent=2) + "\n").encode()
            nuke = settings
    names = [*files, "README.md"]
    files["README.md"] = export_readme(
        card, function, fmt=fmt, files=names, nuke=nuke, flame_inputs=flame_rows
    ).encode()
    return Export(model=f"{card.name}@{card.version}", model_hash=card.weights_sha256 or "", files=files)
