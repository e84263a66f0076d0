"""List the models a server offers, with their inputs and parameters.

Without --server (or $PLATEFORGE_SERVER) a private local server is started for the listing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence

from plateforge.cli.common import add_server_arguments, connect
from plateforge.models import ModelInfo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge models", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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
    with connect(args) as client:
        infos = client.list_models()
    if args.json:
        print(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
    else:
        print("\n".join(describe(i) for i in infos))
    return 0
