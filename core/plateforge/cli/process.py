"""Process a frame range of EXRs through a model.

  plateforge process --model cleanup-classical --input 'plate.####.exr' --mask 'mask.####.exr' \
      --frames 1001-1100 --output 'clean.####.exr' [--param temporal_radius=2]

--model takes NAME or NAME@VERSION, as `plateforge models` prints it; a bare NAME is resolved to its
newest version once, at the start, and every frame is made by that version. --model-hash pins
the model's hash too (a farm job pins both at submission: `plateforge models --pin NAME`), and a
server whose model hashes otherwise is refused. --precision fp32 asks for float32 arithmetic on
every device (GPU workers otherwise run learned models in fp16), so that a farm mixing GPU and CPU
workers makes the same frames; every output records the device and precision it was made in.

Neighbouring frames a temporal model needs are read from disk around each target frame.
Outputs are written atomically and carry a provenance record in their headers. A mask is any
EXR whose alpha (or, without alpha, first channel) is the mask. Without --server (or
$PLATEFORGE_SERVER) a private local server is started for the command; --server a:1,b:2 spreads
the frames over several servers and carries on when one goes away.

--input-colorspace NAME says the plates are not scene-linear (sRGB, ARRI LogC, S-Log3 ... as the
OpenColorIO config --ocio names them; default $OCIO, else OCIO's ACES studio config): their R, G, B
are converted to the config's scene_linear space before the model, every output's R, G, B back to
NAME after, and the outputs record it (plateforge/inputColorspace). Plates with integer R, G, B
are refused without it. Needs the review extra (pip install 'plateforge[review]').

An output that would replace an input file (same pattern, a symlink or hardlink to it, another
spelling of the path, a folder symlink) is refused before anything is written.

Re-running is safe: --skip-existing skips a frame only when its outputs exist and record this
very job (model, version and hash, parameters, the hash of every input file, device and
precision); anything else is redone. --keep-going reports a failing frame (a damaged input, a
frame the server refuses) and processes the others.

Exit status: 0 done (every frame written, or already done); 1 partly failed (--keep-going: some
frames failed, the others are done); 2 failed (a bad command, every frame failed, or a failure
stopped the run); 3 no server could be reached (or it went away); 130 interrupted. --summary FILE writes a JSON summary
(schema plateforge.process-summary/1: status, processed, skipped, redone, failed with each
error, not_reached, outputs, seconds); --summary - prints it as one line on stdout. The file
says "running" while the command runs, so an older summary is never mistaken for this run's.

Ctrl-C stops after the frame in hand (every file written is whole), writes a "cancelled" summary
and says how many frames were written; rerun with --skip-existing to do the rest. A second Ctrl-C
stops at once. An interrupt that arrives once every frame is written changes nothing: exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from plateforge import atomic
from plateforge.batch import SUMMARY_SCHEMA, BatchReport, SequenceJob, run_batch
from plateforge.calls import PRECISIONS
from plateforge.cli.common import ProgressLine, add_server_arguments, connect
from plateforge.cli.progress import add_quiet_argument
from plateforge.errors import PlateforgeError, UsageError
from plateforge.exr import EXR_MAGIC
from plateforge.messages import explain
from plateforge.models import parse_model_ref, parse_param
from plateforge.sequences import parse_frames

_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge process", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", required=True, metavar="NAME[@VERSION]", help="the model, as `plateforge models` lists it"
    )
    parser.add_argument(
        "--model-hash", default="", metavar="SHA256", help="refuse a server whose model has another hash (farm pinning)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="arithmetic of learned models: auto (fp16 on a GPU) or fp32 on every device (default auto)",
    )
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
    parser.add_argument(
        "--input-colorspace",
        default="",
        metavar="NAME",
        help="the plates' OpenColorIO colour space (sRGB, a log or camera space): converted to the config's "
        "scene_linear before the model and back after; needed for integer plates (default: already linear)",
    )
    parser.add_argument(
        "--ocio",
        default="",
        metavar="CONFIG",
        help="OpenColorIO config for --input-colorspace (default $OCIO, else ocio://studio-config-latest)",
    )
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
    add_quiet_argument(parser)
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    job = _job(args)
    if args.summary and args.summary != "-":
        _refuse_summary_over_an_image(args.summary)
        # Whatever happens next, an older summary no longer describes the files on disk.
        write_summary(args.summary, {"schema": SUMMARY_SCHEMA, "status": "running", "model": job.model})
    interrupts = _Interrupts()
    report = BatchReport(model=job.model, frames=list(job.frames))
    with interrupts.installed():  # until the end: an interrupt while finishing changes nothing
        try:
            with connect(args, quiet=args.quiet) as client, interrupts.processing():
                progress = ProgressLine(args.model, quiet=args.quiet)
                run_batch(client, job, progress=progress, cancel=interrupts.cancel, report=report)
        except PlateforgeError as error:
            if args.summary:  # a farm wrapper reading the summary learns why there is nothing else
                code = explain(error).exit_code  # the status this command exits with (plateforge.messages)
                failed = {"schema": SUMMARY_SCHEMA, "status": "failed", "exit_code": code, "model": job.model}
                write_summary(args.summary, {**failed, "error": type(error).__name__, "message": str(error)})
            raise
        except KeyboardInterrupt:  # while connecting, or a second Ctrl-C: stopped at once
            report.cancelled = True
        if interrupts.cancel.is_set() and report.status != "done":
            report.cancelled = True
        return _finish(args, report)


def _job(args: argparse.Namespace) -> SequenceJob:
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
    return SequenceJob(
        model=str(parse_model_ref(args.model)),
        inputs=inputs,
        frames=parse_frames(args.frames),
        outputs=outputs,
        params=dict(parse_param(p) for p in args.param),
        part=args.part,
        sanitize_non_finite=args.sanitize,
        compression=args.compression,
        skip_existing=args.skip_existing,
        keep_going=args.keep_going,
        model_hash=args.model_hash,
        precision=args.precision,
        input_colorspace=args.input_colorspace,
        ocio_config=args.ocio,
    )


def _finish(args: argparse.Namespace, report: BatchReport) -> int:
    """Summary, the closing lines, and the exit status of a run that got as far as ``report``."""
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
        done = len(report.processed)
        print(
            f"plateforge process: interrupted: wrote {done} of {len(report.frames)} frames; rerun with --skip-existing",
            file=sys.stderr,
        )
    return code


class _Interrupts:
    """Ctrl-C while frames are processed asks the run to stop after the frame in hand (a second
    one stops at once); once the run is over, Ctrl-C no longer changes its outcome."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.phase = "starting"  # starting -> processing -> finished

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.phase == "finished":
            return  # every frame is written: shutting down is not worth an interrupted status
        if self.phase == "processing" and not self.cancel.is_set():
            self.cancel.set()
            print("\nplateforge process: stopping after the frame in hand (Ctrl-C again to stop now)", file=sys.stderr)
            return
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread; a caller elsewhere keeps its own handling
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            self.phase = "finished"
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def processing(self) -> Iterator[None]:
        self.phase = "processing"
        try:
            yield
        finally:
            self.phase = "finished"


#: Exit status by BatchReport.status (see the module help).
EXIT_CODES = {"done": 0, "partial": 1, "failed": 2, "cancelled": 130}


def _refuse_summary_over_an_image(target: str) -> None:
    """The summary is written before anything else: it must not replace a plate (a slip such as
    ``--summary plate.1001.exr``)."""
    try:
        with open(target, "rb") as handle:
            head = handle.read(len(EXR_MAGIC))
    except OSError:
        return  # absent (the usual case) or unreadable: writing it will say what is wrong
    if head == EXR_MAGIC:
        raise UsageError(f"--summary {target} is an EXR image; give a path for the JSON summary (summary.json)")


def write_summary(target: str, summary: dict[str, object]) -> None:
    """The summary as one JSON line on stdout ("-"), or into a file, atomically."""
    text = json.dumps(summary, sort_keys=True)
    if target == "-":
        print(text, flush=True)
        return
    path = os.path.abspath(target)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_text(path, text + "\n")
    except OSError as error:
        raise UsageError(f"cannot write the summary {target}: {error.strerror}") from None
