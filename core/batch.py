"""Processing a frame range of numbered EXRs through a server: the CLI's, the demo's and the
farm's common path.

For each target frame it reads the inputs the model declares (with the neighbours a temporal
model needs, as far as they exist on disk), sends them — keeping two requests in flight — and
writes each output atomically with the provenance record plus the source file and its hash.
Frames are read once and kept only while a later target still needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.errors import ExrError, UsageError
from plateforge.exr import read_exr, sha256_file, write_exr
from plateforge.frames import Frame
from plateforge.models import ModelInfo, ParamValue
from plateforge.provenance import PREFIX
from plateforge.sequences import frame_path, has_frame_token

__all__ = ["SequenceJob", "run_sequence"]

Progress = Callable[[int, int, int], None]  # (done, total, frame just written)


@dataclass
class SequenceJob:
    model: str
    #: Input name -> file pattern (``plate.####.exr``) or a single file used for every frame.
    inputs: dict[str, str]
    frames: list[int]
    #: Output name -> file pattern. The name "" means the model's first declared output.
    outputs: dict[str, str]
    params: dict[str, ParamValue] = field(default_factory=dict)
    #: EXR part to read from multipart inputs (None: the first part).
    part: str | None = None
    sanitize_non_finite: bool = False
    compression: str = "zip"
    #: Skip frames whose outputs all exist already (a resumed farm task).
    skip_existing: bool = False


class _Reader:
    """Reads input frames on demand and forgets them once no later target needs them."""

    def __init__(self, job: SequenceJob) -> None:
        self.job = job
        self.cache: dict[tuple[str, int | None], Frame] = {}
        self.sources: dict[tuple[str, int | None], str] = {}

    def get(self, name: str, frame: int | None) -> Frame:
        key = (name, frame)
        if key not in self.cache:
            pattern = self.job.inputs[name]
            path = frame_path(pattern, frame) if frame is not None else pattern
            image = read_exr(path, part=self.job.part)
            self.cache[key] = image.replace(frame_number=frame)
            self.sources[key] = path
        return self.cache[key]

    def exists(self, name: str, frame: int) -> bool:
        return os.path.exists(frame_path(self.job.inputs[name], frame))

    def forget_before(self, frame: int) -> None:
        for key in [k for k in self.cache if k[1] is not None and k[1] < frame]:
            del self.cache[key]


def _calls(job: SequenceJob, info: ModelInfo, reader: _Reader, todo: list[int]) -> Iterator[ProcessCall]:
    specs = {spec.name: spec for spec in info.inputs}
    for target in todo:
        inputs: dict[str, list[Frame]] = {}
        for name, pattern in job.inputs.items():
            if name not in specs:
                raise UsageError(f"model {info.name!r} takes no input {name!r}; it takes {sorted(specs)}")
            if not has_frame_token(pattern):
                inputs[name] = [reader.get(name, None)]
                continue
            if not reader.exists(name, target):
                raise ExrError(f"input {name!r} frame {target}: {frame_path(pattern, target)} does not exist")
            radius = specs[name].temporal_radius
            numbers = [f for f in range(target - radius, target + radius + 1) if f == target or reader.exists(name, f)]
            inputs[name] = [reader.get(name, f) for f in numbers]
        reader.forget_before(target - max((s.temporal_radius for s in info.inputs), default=0))
        yield ProcessCall(
            model=job.model,
            inputs=inputs,
            params=dict(job.params),
            target_frame=target,
            sanitize_non_finite=job.sanitize_non_finite,
        )


def _output_paths(job: SequenceJob, info: ModelInfo, frame: int) -> dict[str, str]:
    first = info.outputs[0].name if info.outputs else "image"
    return {(name or first): frame_path(pattern, frame) for name, pattern in job.outputs.items()}


def run_sequence(client: Client, job: SequenceJob, *, progress: Progress | None = None) -> list[Path]:
    """Process ``job.frames``; return the files written, in order."""
    if not job.frames:
        raise UsageError("no frames to process")
    info = client.model_info(job.model)
    for name, pattern in job.outputs.items():
        if len(job.frames) > 1 and not has_frame_token(pattern):
            raise UsageError(f"output {name or 'image'!r} pattern {pattern!r} has no frame token (#### or %04d)")
    known_outputs = {o.name for o in info.outputs}
    for name in job.outputs:
        if name and name not in known_outputs:
            raise UsageError(f"model {info.name!r} has no output {name!r}; it has {sorted(known_outputs)}")

    todo = [
        f
        for f in job.frames
        if not (job.skip_existing and all(os.path.exists(p) for p in _output_paths(job, info, f).values()))
    ]
    reader = _Reader(job)
    primary = info.inputs[0].name if info.inputs else next(iter(job.inputs))
    source_hashes: dict[str, str] = {}
    written: list[Path] = []
    results = client.process_sequence(_calls(job, info, reader, todo))
    for done, (target, result) in enumerate(zip(todo, results, strict=True), 1):
        source = (
            frame_path(job.inputs[primary], target) if has_frame_token(job.inputs[primary]) else job.inputs[primary]
        )
        if source not in source_hashes:
            source_hashes[source] = sha256_file(source)
        extra = {PREFIX + "sourceFile": os.path.abspath(source), PREFIX + "sourceFileSha256": source_hashes[source]}
        for name, path in _output_paths(job, info, target).items():
            if name not in result.outputs:
                raise UsageError(f"model {info.name!r} returned no output {name!r}")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_exr(path, result.outputs[name], compression=job.compression, attributes=extra)
            written.append(Path(path))
        if progress is not None:
            progress(done, len(todo), target)
    return written
