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

Progress goes to stderr: a line when the server starts building and when it is done (with the
time it took and the export's size), then the files as they are written (a bar with ETA on a
terminal, a line each off one); --quiet prints none of it, only the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from plateforge import atomic
from plateforge.cli.common import add_server_arguments, connect
from plateforge.cli.progress import Progress, add_quiet_argument, duration
from plateforge.export_client import EXPORT_FORMATS, export_model
from plateforge.models import parse_model_ref


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", metavar="MODEL", help="NAME or NAME@VERSION, as `plateforge models` lists it")
    parser.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS), help="the runtime to export for")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder to write the export's files into")
    add_quiet_argument(parser)
    add_server_arguments(parser)
    return parser


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ref = parse_model_ref(args.model)  # a bad reference needs no server
    output = Path(args.output)
    # The build's lines, then a bar over the files whose pace starts when the build is done.
    notes = Progress(f"export {args.model}", quiet=args.quiet)
    with connect(args, quiet=args.quiet) as client:
        notes.event(f"export {args.model}: the server builds the {args.format} export…")
        started = time.monotonic()
        exported = export_model(client, name=ref.name, version=ref.version, fmt=args.format)
        took = time.monotonic() - started  # not counting a private local server's shutdown
    total = sum(len(data) for data in exported.files.values())
    notes.event(f"export {exported.model}: built in {duration(took)}, {len(exported.files)} file(s), {_size(total)}")
    output.mkdir(parents=True, exist_ok=True)
    progress = Progress(f"export {args.model}", unit="files", quiet=args.quiet, every=1)
    try:
        for done, (name, data) in enumerate(exported.files.items(), 1):
            atomic.write_bytes(output / name, data)
            progress.update(done, len(exported.files), f"{name} ({_size(len(data))})")
    finally:
        progress.close()
    print(
        f"exported {exported.model} ({args.format}, weights sha256 {exported.model_hash}) to {output}:", file=sys.stderr
    )
    for name in exported.files:
        print(output / name)
    return 0
