"""List the models a server offers, with their inputs and parameters.

Each model is listed as NAME@VERSION, the reference every command takes (process --model, the
farm templates, the hosts' model pickers); a bare NAME means its newest version.

  plateforge models                        every model, its inputs, outputs and parameters
  plateforge models --pin cleanup@step2000  one line: NAME@VERSION and the model's sha256

--pin resolves a reference now (a bare NAME to its newest version) and prints what a farm job
is pinned to at submission, so every task uses exactly that model:

  read model hash < <(plateforge models --pin sh010-cleanup)
  openjd run farm/openjd/process-shot.yaml -p Model="$model" -p ModelHash="$hash" ...

Without --server (or $PLATEFORGE_SERVER) a private local server is started for the listing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence

from plateforge.cli.common import add_server_arguments, connect
from plateforge.models import ModelInfo, parse_model_ref, select_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--pin", metavar="NAME[@VERSION]", help="print the model's NAME@VERSION and sha256 (what a farm job pins)"
    )
    add_server_arguments(parser)
    return parser


def describe(info: ModelInfo) -> str:
    lines = [f"{info.name}@{info.version}  ({info.tool})  {info.description}"]
    for spec in info.inputs:
        extra = f", ±{spec.temporal_radius} frames" if spec.temporal_radius else ""
        need = "required" if spec.required else "optional"
        chans = ",".join(spec.channels) or "any channels"
        lines.append(f"    input  {spec.name:<12} {need}, {chans}{extra}: {spec.description}")
    for out in info.outputs:
        lines.append(f"    output {out.name:<12} {out.description}")
    for p in info.parameters:
        bounds = ""
        if p.minimum is not None or p.maximum is not None:
            bounds = f" [{p.minimum if p.minimum is not None else ''}..{p.maximum if p.maximum is not None else ''}]"
        if p.choices:
            bounds = f" {{{'|'.join(p.choices)}}}"
        lines.append(f"    param  {p.name:<12} {p.kind} = {p.default!r}{bounds}: {p.description}")
    if info.provenance:
        lines.append(f"    provenance: {info.provenance}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ref = parse_model_ref(args.pin) if args.pin is not None else None  # a bad reference needs no server
    with connect(args, quiet=ref is not None) as client:
        infos = client.list_models()
        where = client.address
    if ref is not None:
        info = select_model(infos, ref, where=where)
        pinned = {"model": f"{info.name}@{info.version}", "hash": info.served_hash}
        print(json.dumps(pinned) if args.json else f"{pinned['model']} {pinned['hash']}")
        return 0
    if args.json:
        print(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
    else:
        print("\n".join(describe(i) for i in infos))
    return 0
