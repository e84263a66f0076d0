"""Describe an EXR file: parts, windows, channels, attributes and plateforge provenance.

Reads headers only, so it is fast on large files. A damaged file gives a one-line error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence

from plateforge.exr import read_exr_header
from plateforge.provenance import from_attributes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge info", description=__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE.exr")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = {}
    for path in args.files:
        parts = read_exr_header(path)
        report[path] = [dataclasses.asdict(p) for p in parts]
        if args.json:
            continue
        print(f"{path}: {len(parts)} part(s)")
        for part in parts:
            print(f"  part {part.name or '(unnamed)'!s}: {part.storage}, {part.compression} compression")
            print(f"    data window    {part.data_window}  ({part.data_window.width}x{part.data_window.height})")
            print(
                f"    display window {part.display_window}  ({part.display_window.width}x{part.display_window.height})"
            )
            for name, pixel_type, xs, ys in part.channels:
                sampling = f"  sampling {xs}x{ys}" if (xs, ys) != (1, 1) else ""
                print(f"    channel {name:<20} {pixel_type}{sampling}")
            provenance = from_attributes(part.attributes)
            others = {k: v for k, v in part.attributes.items() if not k.startswith("plateforge/")}
            for key, value in sorted(others.items()):
                print(f"    attribute {key} = {value}")
            for key, value in sorted(provenance.items()):
                print(f"    provenance {key} = {value}")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return 0
