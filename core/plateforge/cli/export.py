"""Export a trained model to run without the server: ONNX, TorchScript, Flame or Nuke.

  plateforge export sh010-look@step600 --format onnx --output exports/look
  plateforge export sh010-look --format flame --output /flame/models     MODEL.onnx + MODEL.json
  plateforge export sh010-matte --format nuke --output ~/nuke/models     MODEL.pt + CatFileCreator knobs

The server builds the export (the net plus the fixed pre- and post-processing of one frame, any
height and width) and this command writes its files into --output, each atomically (an existing
file of the same name is replaced whole). Every export carries the model card: the .onnx in its
metadata, the .pt in card.json beside it; `plateforge provenance FILE` prints it. README.md lists
the input tensor's channels in order, and what the host must compute first where the model reads
a classical pre-pass (the cleanup's fill, the matte's key and band). An export is refused unless
every source the model learned from permits "distribute" in its manifest.

Without --server (or $PLATEFORGE_SERVER) a private local server is started for the export; it
serves the models in $PLATEFORGE_MODELS_DIR (or the default models folder).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from plateforge import atomic
from plateforge.cli.common import add_server_arguments, connect
from plateforge.export_client import EXPORT_FORMATS, export_model
from plateforge.models import parse_model_ref


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", metavar="MODEL", help="NAME or NAME@VERSION, as `plateforge models` lists it")
    parser.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS), help="the runtime to export for")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder to write the export's files into")
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ref = parse_model_ref(args.model)  # a bad reference needs no server
    output = Path(args.output)
    with connect(args) as client:
        exported = export_model(client, name=ref.name, version=ref.version, fmt=args.format)
    output.mkdir(parents=True, exist_ok=True)
    for name, data in exported.files.items():
        atomic.write_bytes(output / name, data)
    print(
        f"exported {exported.model} ({args.format}, weights sha256 {exported.model_hash}) to {output}:", file=sys.stderr
    )
    for name in exported.files:
        print(output / name)
    return 0
