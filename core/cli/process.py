"""Process a frame range of EXRs through a model.

  plateforge process --model cleanup-classical --input 'plate.####.exr' --mask 'mask.####.exr' \
      --frames 1001-1100 --output 'clean.####.exr' [--param temporal_radius=2]

Neighbouring frames a temporal model needs are read from disk around each target frame.
Outputs are written atomically and carry a provenance record in their headers. A mask is any
EXR whose alpha (or, without alpha, first channel) is the mask. Without --server (or
$PLATEFORGE_SERVER) a private local server is started for the command; --server a:1,b:2 spreads
the frames over several servers and carries on when one goes away.

Re-running is safe: --skip-existing skips a frame only when its outputs exist and record this
very job (model and its hash, parameters, the hash of every input file); anything else is
redone. --keep-going reports a failing frame (a damaged input, a frame the server refuses) and
processes the others.

Exit status: 0 done (every frame written, or already done); 1 partly failed (--keep-going: some
frames failed, the others are done); 2 failed (a bad command, every frame failed, or a failure
stopped the run); 3 no server could be reached (or it went away); 130 interrupted. --summary FILE writes a JSON summary
(schema plateforge.process-summary/1: status, processed, skipped, redone, failed with each
error, not_reached, outputs, seconds); --summary - prints it as one line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence

from plateforge.batch import SUMMARY_SCHEMA, SequenceJob, run_batch
from plateforge.cli.common import ProgressLine, add_server_arguments, connect
from plateforge.errors import CancelledError, PlateforgeError, UsageError
from plateforge.messages import explain
from plateforge.models import ParamValue
from plateforge.sequences import parse_frames

_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge process", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model name (see `plateforge models`)")
    parser.add_argument("--input", required=True, metavar="PATTERN", help="the plate: 'plate.####.exr'")
    parser.add_argument("--mask", metavar="PATTERN", help="the mask input: 'mask.####.exr'")
    parser.add_argument(
        "--in",
        dest="extra_inputs",
        action="append",
        default=[],
        metavar="NAME=PATTERN",
        help="another declared input, e.g. clean_plate=clean.####.exr (repeatable)",
    )
    parser.add_argument("--frames", required=True, help="frame range: 1001-1100, 1001-1100x2, 1001,1005")
    parser.add_argument(
        "--output",
        required=True,
        action="append",
        metavar="[NAME=]PATTERN",
        help="where to write the first output ('out.####.exr'), or a named output (alpha=a.####.exr)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help='model parameter; VALUE is JSON (2, 0.5, true, "telea") or bare text (repeatable)',
    )
    parser.add_argument("--part", help="EXR part to read from multipart inputs (default: the first)")
    parser.add_argument("--sanitize", action="store_true", help="replace NaN/Inf instead of refusing the frame")
    parser.add_argument("--compression", default="zip", help="output EXR compression (default zip)")
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip frames whose outputs exist and record this same job (provenance); redo the others",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="report a failing frame and process the others (exit 1)"
    )
    parser.add_argument("--summary", metavar="FILE", help="write a JSON summary to FILE ('-': one line on stdout)")
    add_server_arguments(parser)
    return parser


def parse_param(text: str) -> tuple[str, ParamValue]:
    match = _NAMED.match(text)
    if not match:
        raise UsageError(f"--param {text!r}: write NAME=VALUE")
    name, raw = match.groups()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if not isinstance(value, (bool, int, float, str)):
        raise UsageError(f"--param {name}: {raw!r} is not a number, true/false or text")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    inputs = {"plate": args.input}
    if args.mask:
        inputs["mask"] = args.mask
    for item in args.extra_inputs:
        match = _NAMED.match(item)
        if not match:
            raise UsageError(f"--in {item!r}: write NAME=PATTERN")
        inputs[match.group(1)] = match.group(2)
    outputs: dict[str, str] = {}
    for item in args.output:
        match = _NAMED.match(item)
        name, pattern = (match.group(1), match.group(2)) if match and "/" not in match.group(1) else ("", item)
        outputs[name] = pattern
    job = SequenceJob(
        model=args.model,
        inputs=inputs,
        frames=parse_frames(args.frames),
        outputs=outputs,
        params=dict(parse_param(p) for p in args.param),
        part=args.part,
        sanitize_non_finite=args.sanitize,
        compression=args.compression,
        skip_existing=args.skip_existing,
        keep_going=args.keep_going,
    )
    try:
        with connect(args) as client:
            report = run_batch(client, job, progress=ProgressLine(args.model))
    except PlateforgeError as error:
        if args.summary:  # a farm wrapper reading the summary learns why there is nothing else
            code = explain(error).exit_code  # the status this command exits with (plateforge.messages)
            failed = {"schema": SUMMARY_SCHEMA, "status": "failed", "exit_code": code, "model": job.model}
            write_summary(args.summary, {**failed, "error": type(error).__name__, "message": str(error)})
        raise
    code = EXIT_CODES[report.status]
    if args.summary:
        write_summary(args.summary, {**report.to_json(), "exit_code": code})
    written = report.written
    print(
        f"wrote {len(written)} file(s)"
        + (f": {written[0]} … {written[-1]}" if written else "")
        + (f"; skipped {len(report.skipped)} already done" if report.skipped else ""),
        file=sys.stderr,
    )
    failures = list(report.failed)
    last = failures.pop() if report.stopped and failures else None
    for failure in failures:
        print(f"plateforge process: frame {failure.frame} failed: {failure.error}", file=sys.stderr)
    if last is not None:
        raise last.error  # the error that stopped the run: one clear line and exit 2, as for any other
    if report.status == "cancelled":
        raise CancelledError("cancelled")
    return code


#: Exit status by BatchReport.status (see the module help).
EXIT_CODES = {"done": 0, "partial": 1, "failed": 2, "cancelled": 130}


def write_summary(target: str, summary: dict[str, object]) -> None:
    """The summary as one JSON line on stdout ("-"), or into a file, atomically."""
    text = json.dumps(summary, sort_keys=True)
    if target == "-":
        print(text, flush=True)
        return
    path = os.path.abspath(target)
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(temp, path)
    except OSError as error:
        raise UsageError(f"cannot write the summary {target}: {error.strerror}") from None
