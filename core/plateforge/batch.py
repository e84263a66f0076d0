"""Processing a frame range of numbered EXRs through a server: the CLI's, the demo's and the
farm's common path.

For each target frame it reads the inputs the model declares (with the neighbours a temporal
model needs, as far as they exist on disk), sends them — keeping two requests in flight per
server — and writes each output atomically with the provenance record plus what only the host
knows: the source file and its hash, and the hash of every input file sent.

Runs are resumable and idempotent: with ``skip_existing`` a frame is skipped only when every one
of its outputs exists and records this very job (model, model version and hash, parameters with
their defaults, every input file's hash, the read options); an output made any other way is
redone. With ``keep_going`` a frame that fails (a damaged input, a frame the server refuses) is
reported and the others go on. :func:`run_batch` says what happened to every frame.

The model is resolved once, when the run starts (``NAME`` -> its newest version), and every
frame is made by exactly that version: a model published mid-run changes nothing. A farm pins it
at submission (``model="NAME@VERSION"``, ``model_hash=...``) so that every task of the job uses
the same one, and a task whose server serves another refuses to start.

A run never writes over what it reads: an output frame that is one of the input files (same
pattern, a symlink, a hardlink, another spelling of the path, a folder symlink) is refused before
anything is written, naming both patterns.

Example (this is what ``plateforge process`` does)::

    from plateforge import Client, SequenceJob, parse_frames, run_batch

    with Client("127.0.0.1:50061", token="...") as client:
        report = run_batch(client, SequenceJob(
            model="cleanup-classical",
            inputs={"plate": "plate.####.exr", "mask": "mask.####.exr"},
            frames=parse_frames("1001-1100"),
            outputs={"image": "clean.####.exr"},
        ))
    print(report.status, report.written)
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plateforge.calls import PRECISIONS, Precision, ProcessCall, ProcessResult
from plateforge.client import Client
from plateforge.errors import (
    AuthError,
    CancelledError,
    PlateforgeError,
    ServerUnavailableError,
    UnknownModelError,
    UsageError,
)
from plateforge.exr import read_exr, read_exr_header, write_exr
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ParamValue, resolve_params
from plateforge.planner import FileHashes, InputFiles, Record, input_files, inputs_digest, plan_sequence
from plateforge.provenance import DEVICE_ATTRIBUTE, PRECISION_ATTRIBUTE, PREFIX, from_attributes
from plateforge.review.colour import ColourConversion, plate_to_linear
from plateforge.sequences import frame_path, has_frame_token, same_pattern

__all__ = ["SUMMARY_SCHEMA", "BatchReport", "FrameFailure", "SequenceJob", "run_batch", "run_sequence"]

Progress = Callable[[int, int, int], None]  # (done, total, frame just finished)
Status = Literal["done", "partial", "failed", "cancelled"]

#: The ``schema`` of :meth:`BatchReport.to_json` (``plateforge process --summary``).
SUMMARY_SCHEMA = "plateforge.process-summary/1"

#: Errors that no other frame would escape: the job stops even with ``keep_going``.
_FATAL = (AuthError, CancelledError, ServerUnavailableError, UnknownModelError, UsageError)


@dataclass(kw_only=True)
class SequenceJob:
    """A frame range to process: which model, which files in, which files out, and how."""

    #: The model reference, ``NAME`` or ``NAME@VERSION`` as ``plateforge models`` prints it. A bare
    #: name is resolved to its newest version once, when the run starts.
    model: str
    #: Input name -> file pattern (``plate.####.exr``) or a single file used for every frame.
    inputs: dict[str, str]
    #: The frames to produce (:func:`plateforge.parse_frames` reads ``1001-1100``).
    frames: list[int]
    #: Output name -> file pattern. The name "" means the model's first declared output.
    outputs: dict[str, str]
    params: dict[str, ParamValue] = field(default_factory=dict)
    #: EXR part to read from multipart inputs (None: the first part).
    part: str | None = None
    sanitize_non_finite: bool = False
    compression: str = "zip"
    #: Skip frames already done by this same job: every output exists and its provenance matches
    #: (model, model hash, parameters, input hashes). Outputs made otherwise are redone.
    skip_existing: bool = False
    #: Report a failing frame and go on with the others (otherwise the first failure stops).
    keep_going: bool = False
    #: The model hash the job was pinned to at submission ("": not pinned). A server whose model
    #: hashes otherwise is refused before any frame: it would make different frames.
    model_hash: str = ""
    #: "auto": the server's arithmetic (fp16 on a GPU); "fp32": float32 on every device, so the
    #: workers of a mixed farm agree. Outputs record what was used; --skip-existing compares it.
    precision: Precision = "auto"
    #: The plates' colour space in the OpenColorIO config ("" : already scene-linear). Inputs' R,
    #: G, B are converted to the config's scene_linear space before the model and every output's
    #: back after; outputs record it. Integer (code value) plates are refused without one.
    input_colorspace: str = ""
    #: The OpenColorIO config ("" : $OCIO, else OCIO's built-in ACES studio config).
    ocio_config: str = ""


@dataclass(frozen=True)
class FrameFailure:
    """A frame that could not be made, and why."""

    frame: int
    error: PlateforgeError

    def to_json(self) -> dict[str, Any]:
        return {"frame": self.frame, "error": type(self.error).__name__, "message": str(self.error)}


@dataclass
class BatchReport:
    """What a run did with every frame it was given."""

    model: str
    frames: list[int]
    #: Frames processed and written by this run, in order.
    processed: list[int] = field(default_factory=list)
    #: Frames skipped: their outputs already recorded this very job.
    skipped: list[int] = field(default_factory=list)
    #: Frames whose outputs existed but were made otherwise (another model, parameter or input),
    #: processed again; also listed in ``processed`` once written.
    redone: list[int] = field(default_factory=list)
    failed: list[FrameFailure] = field(default_factory=list)
    #: Files written, in order.
    written: list[Path] = field(default_factory=list)
    #: Set when the run stopped before the end: a failure without ``keep_going``, a fatal error.
    stopped: bool = False
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def not_reached(self) -> list[int]:
        """Frames neither done nor failed: the run stopped (or was cancelled) before them."""
        seen = set(self.processed) | set(self.skipped) | {f.frame for f in self.failed}
        return [f for f in self.frames if f not in seen]

    @property
    def status(self) -> Status:
        """done: every frame written or already done; partial: some frames failed and others are
        done; failed: the run stopped on an error, or no frame is done; cancelled: asked to stop."""
        if self.cancelled:
            return "cancelled"
        if not self.failed and not self.not_reached:
            return "done"
        if self.stopped or not (self.processed or self.skipped):
            return "failed"
        return "partial"

    def to_json(self) -> dict[str, Any]:
        processed_s = self.seconds if self.seconds > 0 else None
        return {
            "schema": SUMMARY_SCHEMA,
            "status": self.status,
            "model": self.model,
            "frames": len(self.frames),
            "processed": self.processed,
            "skipped": self.skipped,
            "redone": self.redone,
            "failed": [f.to_json() for f in self.failed],
            "not_reached": self.not_reached,
            "outputs": [str(p) for p in self.written],
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(len(self.processed) / processed_s, 3) if processed_s else None,
        }


class _Reader:
    """Reads input frames on demand (in scene-linear light: see :func:`~plateforge.review.colour.plate_to_linear`) and
    forgets them once no later target needs them."""

    def __init__(self, job: SequenceJob, colour: ColourConversion | None) -> None:
        self.job = job
        self.colour = colour
        self.cache: dict[tuple[str, int | None], Frame] = {}

    def get(self, name: str, frame: int | None, path: str) -> Frame:
        key = (name, frame)
        if key not in self.cache:
            image = plate_to_linear(read_exr(path, part=self.job.part), self.colour, what=f"input {name!r} ({path})")
            self.cache[key] = image.replace(frame_number=frame)
        return self.cache[key]

    def forget_before(self, frame: int) -> None:
        for key in [k for k in self.cache if k[1] is not None and k[1] < frame]:
            del self.cache[key]


def _colour(job: SequenceJob) -> ColourConversion | None:
    """The job's plate colour space as a conversion, checked against the config before any frame."""
    if not job.input_colorspace:
        return None
    return ColourConversion.create(colorspace=job.input_colorspace, config=job.ocio_config or None)


def _input_files(job: SequenceJob, info: ModelInfo, target: int) -> InputFiles:
    """The files sent for ``target``: each input at the target and, for temporal inputs, at the
    neighbours within the model's radius that exist on disk."""
    return input_files(job.inputs, {spec.name: spec.temporal_radius for spec in info.inputs}, target)


def _source_path(files: InputFiles, primary: str, target: int) -> str:
    """The primary input's file at the target frame (or its single file)."""
    for number, path in files[primary]:
        if number is None or number == target:
            return path
    raise UsageError(f"no {primary!r} file for frame {target}")


def _host_record(
    job: SequenceJob, files: InputFiles, hashes: FileHashes, source: str, colour: ColourConversion | None
) -> dict[str, str]:
    """What only the host knows, for the output headers: the source file, every input's hash and
    the read options that change pixels."""
    return {
        PREFIX + "sourceFile": os.path.abspath(source),
        PREFIX + "sourceFileSha256": hashes(source),
        PREFIX + "inputsSha256": inputs_digest(files, hashes),
        PREFIX + "sanitizeNonFinite": json.dumps(job.sanitize_non_finite),
        PREFIX + "inputPart": job.part or "",
        **({PREFIX + k: v for k, v in colour.provenance().items()} if colour is not None else {}),
    }


def _output_patterns(job: SequenceJob, info: ModelInfo) -> dict[str, str]:
    """Output name -> pattern, the name "" read as the model's first declared output."""
    first = info.outputs[0].name if info.outputs else "image"
    return {(name or first): pattern for name, pattern in job.outputs.items()}


def _output_paths(job: SequenceJob, info: ModelInfo, frame: int) -> dict[str, str]:
    return {name: frame_path(pattern, frame) for name, pattern in _output_patterns(job, info).items()}


def _compute(job: SequenceJob, info: ModelInfo) -> dict[str, str]:
    """The device and precision this job's frames are made in, as the server announces them
    (empty for a server that does not say: its outputs do not record them either)."""
    device = info.attributes.get(DEVICE_ATTRIBUTE, "")
    precision = info.attributes.get(PRECISION_ATTRIBUTE, "")
    if precision and job.precision == "fp32":
        precision = "fp32"
    return {DEVICE_ATTRIBUTE: device, PRECISION_ATTRIBUTE: precision}


def _made_by_this_job(
    job: SequenceJob,
    info: ModelInfo,
    params: dict[str, ParamValue],
    hashes: FileHashes,
    colour: ColourConversion | None = None,
) -> Record:
    """The planner's record check for this job: every output's provenance names this model, hash,
    parameters, input files, read options, arithmetic and plate encoding. A server that does not
    say its model's hash proves no match; an unreadable output or input is made again (which then
    reports the problem)."""

    def matches(target: int, paths: Mapping[str, str]) -> bool:
        model_hash = info.served_hash
        if not model_hash:
            return False
        try:
            files = _input_files(job, info, target)
            expected = {
                "model": info.name,
                "modelVersion": info.version,
                "modelHash": model_hash,
                "inputsSha256": inputs_digest(files, hashes),
                "sanitizeNonFinite": json.dumps(job.sanitize_non_finite),
                "inputPart": job.part or "",
            }
            compute = _compute(job, info)
            for path in paths.values():
                parts = read_exr_header(path)
                record = from_attributes(parts[0].attributes) if parts else {}
                if any(record.get(k) != v for k, v in expected.items()):
                    return False
                if any(record.get(k, "") != v for k, v in compute.items()):  # other arithmetic: other frames
                    return False
                if json.loads(record.get("params", "null")) != params:
                    return False
                encoding = colour.colorspace if colour is not None else ""
                if record.get("inputColorspace", "") != encoding:  # plates decoded otherwise: other frames
                    return False
        except (PlateforgeError, ValueError):
            return False
        return True

    return matches


def _check_pinned_hash(job: SequenceJob, info: ModelInfo, address: str) -> None:
    """A job pinned to a model hash refuses a server whose model is another."""
    if not job.model_hash:
        return
    served = info.served_hash
    if served != job.model_hash:
        raise UnknownModelError(
            f"model {info.name}@{info.version} on {address} has hash {served or '(not given)'}, but this job was "
            f"pinned to {job.model_hash}: this server serves another model under that name and version "
            "(another plateforge release, or a model folder replaced). Point the job at servers with the pinned "
            "model, or submit it again pinned to this one (plateforge models --pin)"
        )


def _refuse_writing_over_inputs(job: SequenceJob, info: ModelInfo) -> None:
    """:class:`UsageError` before anything is written when an output would replace a file the run
    reads: frames would then be made from neighbours already rewritten, and the source is lost.

    Compared: every output pattern with every input pattern (folders resolved, ``####`` and
    ``%04d`` alike), then every output frame that exists with every input file the run may read
    (target frames and their neighbours), as files (device and inode: symlinks, hardlinks, other
    spellings of the same path, folder symlinks)."""
    for out_name, out_pattern in job.outputs.items():
        for in_name, in_pattern in job.inputs.items():
            if same_pattern(out_pattern, in_pattern):
                _overwrite_error(out_name, out_pattern, in_name, in_pattern, None)
    radius = {spec.name: spec.temporal_radius for spec in info.inputs}
    read: dict[tuple[int, int], tuple[str, str, str]] = {}
    for in_name, in_pattern in job.inputs.items():
        numbers: set[int | None] = {None}
        if has_frame_token(in_pattern):
            r = radius.get(in_name, 0)
            numbers = {f + d for f in job.frames for d in range(-r, r + 1)}
        for number in numbers:
            path = in_pattern if number is None else frame_path(in_pattern, number)
            identity = _file_identity(path)
            if identity is not None:
                read[identity] = (in_name, in_pattern, path)
    if not read:
        return
    for out_name, out_pattern in job.outputs.items():
        for number in job.frames:
            path = frame_path(out_pattern, number)
            found = read.get(_file_identity(path) or (-1, -1))
            if found is not None:
                in_name, in_pattern, in_path = found
                _overwrite_error(out_name, out_pattern, in_name, in_pattern, (path, in_path))


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to (symlinks followed); None if there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def _overwrite_error(
    out_name: str, out_pattern: str, in_name: str, in_pattern: str, files: tuple[str, str] | None
) -> None:
    where = f": {files[0]} is {files[1]}" if files and files[0] != files[1] else (f": {files[0]}" if files else "")
    raise UsageError(
        f"output {out_name or 'image'!r} {out_pattern!r} would overwrite input {in_name!r} {in_pattern!r}{where}; "
        "nothing was written. Write the outputs somewhere else"
    )


def _check_outputs_made(job: SequenceJob, info: ModelInfo, result: ProcessResult, paths: dict[str, str]) -> None:
    """Refuse, before any file is written, a result lacking an output asked for: an output that
    needs an optional input nobody gave (matte-classical's composite without a background)."""
    lacking = [name for name in paths if name not in result.outputs]
    if not lacking:
        return
    said = {o.name: o.description for o in info.outputs}
    unused = [spec.name for spec in info.inputs if not spec.required and spec.name not in job.inputs]
    hint = f"; inputs not given: {', '.join(unused)} (--in NAME=PATTERN)" if unused else ""
    raise UsageError(
        f"model {info.name!r} made no {' or '.join(repr(n) for n in lacking)} output "
        f"({'; '.join(said.get(n, '') for n in lacking)}){hint}; nothing was written for it"
    )


def run_batch(
    client: Client,
    job: SequenceJob,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    report: BatchReport | None = None,
) -> BatchReport:
    """Process ``job.frames`` and report on each; frame failures are in the report, not raised.

    Raised before any frame: a bad job (:class:`UsageError`, unknown model or parameter, an
    output that would overwrite an input, a temporal model's pinned hash not served) or an
    unreachable server. Setting ``cancel`` (from another thread, or a signal handler) stops after
    the frame in hand; every output written is complete, none is partial. ``report``: a report
    to fill as the run goes (its ``model`` and ``frames`` are set here), so a caller whose run is
    cut short by an exception still knows what was written.
    """
    started = time.monotonic()
    if not job.frames:
        raise UsageError("no frames to process")
    if job.precision not in PRECISIONS:
        raise UsageError(f"precision {job.precision!r}: use one of {list(PRECISIONS)}")
    info = client.model_info(job.model)  # resolved once: every frame uses this very version
    _check_pinned_hash(job, info, client.address)
    for name, pattern in job.outputs.items():
        if len(job.frames) > 1 and not has_frame_token(pattern):
            raise UsageError(f"output {name or 'image'!r} pattern {pattern!r} has no frame token (#### or %04d)")
    known_outputs = {o.name for o in info.outputs}
    for name in job.outputs:
        if name and name not in known_outputs:
            raise UsageError(f"model {info.name!r} has no output {name!r}; it has {sorted(known_outputs)}")
    specs = {spec.name for spec in info.inputs}
    for name in job.inputs:
        if name not in specs:
            raise UsageError(f"model {info.name!r} takes no input {name!r}; it takes {sorted(specs)}")
    params = resolve_params(info, job.params)
    _refuse_writing_over_inputs(job, info)
    colour = _colour(job)

    if report is None:
        report = BatchReport(model=job.model, frames=list(job.frames))
    report.model, report.frames = f"{info.name}@{info.version}", list(job.frames)
    hashes = FileHashes()
    plan = plan_sequence(
        job.frames,
        outputs=_output_patterns(job, info),
        record=_made_by_this_job(job, info, params, hashes, colour) if job.skip_existing else None,
    )
    report.skipped.extend(plan.fresh)
    report.redone.extend(plan.redone)
    todo = list(plan.send)

    reader = _Reader(job, colour)
    primary = info.inputs[0].name if info.inputs else next(iter(job.inputs))
    radius = info.temporal_radius
    in_flight = 2 * len(client.addresses)  # one request travelling while one runs, per server
    pending: deque[tuple[int, Future[ProcessResult] | PlateforgeError, InputFiles]] = deque()
    upcoming = iter(todo)
    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="plateforge-batch")

    def submit_next() -> bool:
        target = next(upcoming, None)
        if target is None:
            return False
        try:
            files = _input_files(job, info, target)
            inputs = {name: [reader.get(name, f, p) for f, p in entries] for name, entries in files.items()}
            reader.forget_before(target - radius)
            call = ProcessCall(
                model=info.name,
                version=info.version,
                inputs=inputs,
                params=dict(job.params),
                target_frame=target,
                sanitize_non_finite=job.sanitize_non_finite,
                precision=job.precision,
            )
            pending.append((target, pool.submit(client.process_call, call), files))
        except PlateforgeError as error:
            pending.append((target, error, {}))
        return True

    finished = 0
    try:
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            return report
        while len(pending) < in_flight and submit_next():
            pass
        while pending:
            target, outcome, files = pending.popleft()
            try:
                if isinstance(outcome, PlateforgeError):
                    raise outcome
                result = outcome.result()
                extra = _host_record(job, files, hashes, _source_path(files, primary, target), colour)
                paths = _output_paths(job, info, target)
                _check_outputs_made(job, info, result, paths)  # all of them, before writing any
                outputs = {name: result.outputs[name] for name in paths}
                if colour is not None:  # back into the plates' encoding, all before any is written
                    outputs = {n: colour.from_linear(f, what=f"output {n!r}") for n, f in outputs.items()}
                for name, path in paths.items():
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    write_exr(path, outputs[name], compression=job.compression, attributes=extra)
                    report.written.append(Path(path))
                report.processed.append(target)
            except _FATAL as error:
                report.failed.append(FrameFailure(target, error))
                report.stopped = True
                break
            except PlateforgeError as error:
                report.failed.append(FrameFailure(target, error))
                if not job.keep_going:
                    report.stopped = True
                    break
            finished += 1
            if progress is not None:
                progress(finished, len(todo), target)
            if cancel is not None and cancel.is_set() and finished < len(todo):
                report.cancelled = True
                break
            while len(pending) < in_flight and submit_next():
                pass
    finally:
        for _, outcome, _ in pending:
            if isinstance(outcome, Future):
                outcome.cancel()  # drops the requests not yet sent; those in flight finish unread
        pool.shutdown(wait=True, cancel_futures=True)
        report.seconds = time.monotonic() - started
    return report


def run_sequence(
    client: Client,
    job: SequenceJob,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Process ``job.frames``; return the files written, in order.

    The first frame failure is raised (with ``keep_going``, after the other frames, naming how
    many failed). Setting ``cancel`` (from another thread: a host's progress dialog) stops after
    the frame in hand with :class:`CancelledError`; every output already written is complete,
    none is partial.
    """
    report = run_batch(client, job, progress=progress, cancel=cancel)
    if report.cancelled:
        total = len(report.frames) - len(report.skipped)
        raise CancelledError(f"cancelled after {len(report.processed)} of {total} frames; the rest were not written")
    if report.failed:
        first = report.failed[0].error
        if len(report.failed) > 1:
            frames = ", ".join(str(f.frame) for f in report.failed)
            raise type(first)(f"{first} ({len(report.failed)} frames failed: {frames})")
        raise first
    return report.written
