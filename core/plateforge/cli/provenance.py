"""Print the lineage of an output EXR or of a learned model: what made it, from what, under which licence.

FILE is an EXR written through plateforge (its plateforge/ header attributes name the model, its
hash, the tool, the parameters, the source file and its hashes, the frame and the server), or a
model: its folder, its model.safetensors or its card.json (the model card names every source
with its hash, licence and rights holder, the base model, the code version, the training
parameters and the metrics; the weights' hash is recomputed and checked against card.json), or
an export of one (`plateforge export`): an .onnx file (the card in its metadata) or a TorchScript
.pt file (the card.json beside it), with the sha256 of the weights it was exported from.

Exit status: 0 when every FILE has its lineage printed; 1 when an EXR carries no plateforge
provenance; 2 (one line on stderr) for a file that is neither, is damaged, or whose weights do
not match their card.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from plateforge.errors import ExrError, UsageError
from plateforge.exports import ONNX_SUFFIX, TORCHSCRIPT_SUFFIX, read_export_card
from plateforge.exr import EXR_MAGIC, read_exr_header
from plateforge.modelcards import (
    CARD_FILE,
    model_files,
    read_card_from_safetensors,
    read_model_card,
    weights_sha256,
)
from plateforge.provenance import SCHEMA_VERSION, from_attributes

#: Provenance keys written as JSON by plateforge.provenance.record, decoded for --json.
_JSON_KEYS = ("params", "frame")
#: Text labels of the provenance keys, in the order they are printed; others follow as they are.
_EXR_LABELS = {
    "model": "model",
    "modelVersion": "model version",
    "modelHash": "model sha256",
    "device": "device",
    "precision": "precision",
    "tool": "tool",
    "modelProvenance": "model lineage",
    "params": "parameters",
    "frame": "frame",
    "sourceFile": "source file",
    "sourceFileSha256": "source sha256",
    "sourcePixelsDigest": "source pixels digest",
    "sourcePixelsSha256": "source pixels sha256",  # written before the digest became XXH3-128
    "server": "server",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge provenance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="an EXR, or a model folder / model.safetensors")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


# -- what a file is ---------------------------------------------------------------------------


def _kind(path: str) -> str:
    """ "exr", "model" or "export", or a one-line error for anything else."""
    if path.endswith((ONNX_SUFFIX, TORCHSCRIPT_SUFFIX)) and os.path.isfile(path):
        return "export"
    if os.path.isdir(path):
        return "model"
    if os.path.basename(path) == CARD_FILE:
        return "model"
    try:
        with open(path, "rb") as stream:
            head = stream.read(9)
    except FileNotFoundError:
        raise UsageError(f"'{path}' does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if head.startswith(EXR_MAGIC):
        return "exr"
    if path.endswith(".safetensors") or head[8:9] == b"{":
        return "model"
    raise UsageError(f"'{path}' is neither an EXR file nor a plateforge model (safetensors file or model folder)")


# -- EXR ------------------------------------------------------------------------------------------


def _decoded(provenance: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(provenance)
    for key in _JSON_KEYS:
        if key in out:
            with contextlib.suppress(ValueError):  # not JSON (written by another tool): keep the text
                out[key] = json.loads(out[key])
    return out


def _exr_report(path: str) -> dict[str, Any]:
    parts = []
    for part in read_exr_header(path):
        provenance = from_attributes(part.attributes)
        schema = provenance.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ExrError(
                f"'{path}' carries plateforge provenance of unknown schema {schema!r}; "
                f"this version of plateforge knows {SCHEMA_VERSION!r}"
            )
        if provenance:
            parts.append({"part": part.name, "provenance": _decoded(provenance)})
    return {"file": path, "kind": "exr", "parts": parts}


def _print_exr(report: Mapping[str, Any]) -> None:
    parts = report["parts"]
    if not parts:
        print(
            f"{report['file']}: no plateforge provenance (not made by plateforge, or its header attributes were lost)"
        )
        return
    print(f"{report['file']}: made by plateforge")
    for part in parts:
        indent = "  "
        if len(parts) > 1 or part["part"]:
            print(f"  part {part['part'] or '(unnamed)'}")
            indent = "    "
        record = dict(part["provenance"])
        record.pop("schema", None)
        if "model" in record and "modelVersion" in record:  # what `process --model` takes to redo it
            print(f"{indent}{'model reference':<22}{record['model']}@{record['modelVersion']}")
        for key, label in _EXR_LABELS.items():
            if key in record:
                value = record.pop(key)
                shown = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
                print(f"{indent}{label:<22}{shown}")
        for key, value in sorted(record.items()):
            print(f"{indent}{key:<22}{value}")


# -- models ---------------------------------------------------------------------------------------


def _model_report(path: str) -> dict[str, Any]:
    weights, card_file = model_files(path)
    if os.path.isdir(path) or os.path.basename(path) == CARD_FILE or card_file.is_file():
        card = read_model_card(path, verify=True)
        return {
            "file": path,
            "kind": "model",
            "weights": str(weights),
            "card_file": str(card_file),
            "weights_sha256": card["weights_sha256"],
            "verified": True,
            "card": card,
        }
    # A weights file on its own (copied without its card.json): the card inside, and its hash.
    card = read_card_from_safetensors(path)
    return {
        "file": path,
        "kind": "model",
        "weights": path,
        "card_file": None,
        "weights_sha256": weights_sha256(path),
        "verified": False,
        "card": card,
    }


def _export_report(path: str) -> dict[str, Any]:
    """An exported model: its card, and the hash of the weights it was exported from (the export
    holds the same numbers in another container, so there is nothing to recompute)."""
    card = read_export_card(path)
    return {
        "file": path,
        "kind": "model",
        "weights": path,
        "card_file": None,
        "weights_sha256": card["weights_sha256"],
        "verified": False,
        "exported": True,
        "card": card,
    }


def _json_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _print_model(report: Mapping[str, Any]) -> None:
    card = report["card"]
    print(f"{report['file']}: model {card['name']}@{card['version']} (tool {card['tool']}), card {card['schema']}")
    if card["description"]:
        print(f"  description           {card['description']}")
    print(f"  weights               {report['weights']}")
    check = f"matches {CARD_FILE}" if report["verified"] else f"no {CARD_FILE} beside it: not checked against one"
    if report.get("exported"):
        check = "the weights this export was made from"
    print(f"  weights sha256        {report['weights_sha256']} ({check})")
    print(f"  created               {card['created']}")
    code = card["code_version"]
    print(f"  code                  plateforge {code['plateforge']}, git {code['git_commit'] or 'commit unknown'}")
    print(f"  net                   {card['net']['arch']} {json.dumps(card['net']['config'], sort_keys=True)}")
    base = card["base_model"]
    if base is None:
        print("  base model            none (trained from scratch)")
    else:
        print(f"  base model            {base['name']}, licence {base['licence']}, sha256 {base['sha256']}")
    print(f"  inputs                {', '.join(i['name'] for i in card['inputs']) or 'none'}")
    print(f"  outputs               {', '.join(o['name'] for o in card['outputs']) or 'none'}")
    sources = card["sources"]
    licences = sorted({f"{s['licence']} ({s['rights_holder']})" for s in sources})
    print(f"  sources               {len(sources)} file(s); licences: {', '.join(licences) or 'none'}")
    for source in sources:
        print(
            f"    {source['path']}  licence {source['licence']}  rights holder {source['rights_holder']}"
            f"  sha256 {source['sha256']}"
            + (f"  permitted uses {', '.join(source['permitted_uses'])}" if source.get("permitted_uses") else "")
        )
    for title, table in (("training", card["training"]), ("metrics", card["metrics"])):
        if not table:
            print(f"  {title:<22}none recorded")
        for key, value in sorted(table.items()):
            print(f"  {title:<22}{key} = {_json_text(value)}")


# -- the verb -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reports: dict[str, dict[str, Any]] = {}
    for path in args.files:
        kind = _kind(path)
        reports[path] = (
            _exr_report(path) if kind == "exr" else _export_report(path) if kind == "export" else _model_report(path)
        )
    if args.json:
        print(json.dumps(reports, indent=2, sort_keys=True))
    else:
        for number, report in enumerate(reports.values()):
            if number:
                print()
            (_print_exr if report["kind"] == "exr" else _print_model)(report)
    bare = [r for r in reports.values() if r["kind"] == "exr" and not r["parts"]]
    return 1 if bare else 0
