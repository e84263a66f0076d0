"""The matte half of ``plateforge demo``: pull a matte and replace the background, through the server.

Renders a small synthetic matte shot with exact ground truth (:func:`plateforge.shots.dailies.make_matte_shot`:
a subject with hair and motion blur over the set, its clean plate, its exact alpha and a second
background), keys it with ``matte-classical`` (clean-plate difference key) and composites it over
the second background, and scores alpha (SAD, the sum of absolute differences / 1000, per frame)
and the composite (PSNR against the exact replacement).

With ``--train`` it also trains a learned matte as a job on the same server, from the plates, the
clean plates and the true alpha of :data:`KEYFRAMES` frames only (an artist's keyframe mattes),
serves it and scores it next to the classical key on the frames that are *not* keyframes.

The shot is small (:data:`SIZE`, :data:`FRAMES` frames) so the default demo stays at seconds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plateforge.batch import SequenceJob, run_sequence
from plateforge.cli.common import ProgressLine
from plateforge.cli.job import describe, follow
from plateforge.client import Client
from plateforge.contactsheet import to_display
from plateforge.errors import PlateforgeError
from plateforge.exr import read_exr
from plateforge.jobs_client import TrainingClient
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr
from plateforge.models import ParamValue
from plateforge.sequences import frame_path
from plateforge.shots.dailies import MatteShot, make_matte_shot, write_matte_shot

__all__ = ["FRAMES", "KEYFRAMES", "LEARNED", "MODEL", "SIZE", "TRAIN_SETTINGS", "TRAIN_STEPS", "MatteDemo"]

MODEL = "matte-classical"
#: The model ``--train`` trains on the matte shot and serves.
LEARNED = "demo-matte"
#: The matte shot: width, height and frames (small: the default demo renders and keys it in seconds).
SIZE = (320, 180)
FRAMES = 8
#: Frame indices whose true alpha ``--train`` hands over as the artist's keyframe mattes.
KEYFRAMES = (0, 4, 7)
#: Training steps and the rest of the config for ``--train`` (the loss is the matte mode's own).
TRAIN_STEPS = 200
TRAIN_SETTINGS: dict[str, ParamValue] = {"crop": 64, "batch": 8, "lr": 2e-3, "warmup": 20}
_RGB = ("R", "G", "B")


@dataclass(frozen=True)
class MatteScores:
    """Per scored frame: SAD of alpha (/ 1000) and PSNR of the composite over the new background."""

    sad: list[float]
    psnr: list[float]

    @property
    def mean_sad(self) -> float:
        return float(np.mean(self.sad))

    @property
    def mean_psnr(self) -> float:
        return float(np.mean([v if np.isfinite(v) else 100.0 for v in self.psnr]))

    def figures(self) -> dict[str, float]:
        return {"sad": round(self.mean_sad, 4), "psnr_composite_db": round(self.mean_psnr, 2)}


class MatteDemo:
    """The matte shot written under ``folder``, keyed (and, with :meth:`train`, learned) through a client."""

    def __init__(self, folder: Path, *, seed: int, quiet: bool = False) -> None:
        self.folder = folder
        self.quiet = quiet
        width, height = SIZE
        self.shot: MatteShot = make_matte_shot(width=width, height=height, frames=FRAMES, seed=seed)
        self.patterns = write_matte_shot(self.shot, folder)
        self.frames = self.shot.frame_numbers

    def outputs(self, name: str) -> dict[str, str]:
        return {
            "alpha": str(self.folder / name / "alpha.####.exr"),
            "composite": str(self.folder / name / "composite.####.exr"),
        }

    def key(self, client: Client, model: str, name: str) -> None:
        """Run ``model`` over every frame: alpha and the composite over the second background."""
        job = SequenceJob(
            model=model,
            inputs={
                "plate": self.patterns["plate"],
                "clean_plate": self.patterns["clean"],
                "background": self.patterns["background"],
            },
            frames=self.frames,
            outputs=self.outputs(name),
        )
        run_sequence(client, job, progress=ProgressLine(model, quiet=self.quiet))

    def score(self, name: str, indices: list[int]) -> MatteScores:
        sads, psnrs = [], []
        patterns = self.outputs(name)
        for index in indices:
            number = self.frames[index]
            alpha = read_exr(frame_path(patterns["alpha"], number)).channels["A"].astype(np.float64)
            sads.append(float(np.abs(alpha - self.shot.alpha(index)).sum() / 1000.0))
            over = read_exr(frame_path(patterns["composite"], number)).stack(_RGB)
            psnrs.append(psnr(over, self.shot.composite(index)))
        return MatteScores(sads, psnrs)

    def sheet_row(self, name: str, index: int) -> list[np.ndarray]:
        """Plate, alpha and composite of ``name`` for frame ``index``, for the contact sheet."""
        patterns = self.outputs(name)
        number = self.frames[index]
        alpha = read_exr(frame_path(patterns["alpha"], number)).channels["A"].astype(np.float32)
        grey = np.repeat(np.clip(alpha, 0, 1)[:, :, None] * 255.0, 3, axis=2).round().astype(np.uint8)
        over = read_exr(frame_path(patterns["composite"], number)).stack(_RGB)
        return [to_display(self.shot.plates[index].stack(_RGB)), grey, to_display(over)]

    def write_dataset(self) -> Path:
        """Plates, clean plates and the :data:`KEYFRAMES` true alphas as keyframe mattes, and their manifest."""
        mattes = self.folder / "keyframe-mattes"
        mattes.mkdir(parents=True, exist_ok=True)
        for index in KEYFRAMES:
            source = Path(frame_path(self.patterns["alpha"], self.frames[index]))
            (mattes / source.name.replace("alpha.", "matte.")).write_bytes(source.read_bytes())
        roles = (("plate", "plate.*.exr"), ("clean_plate", "clean.*.exr"), ("matte", "keyframe-mattes/matte.*.exr"))
        sources = [
            Source(glob, "CC0-1.0", "plateforge demo (synthetic)", ("train", "evaluate", "infer"), role)
            for role, glob in roles
        ]
        return write_manifest(
            self.folder / "matte.toml", name="demo-matte-shot", sources=sources, comment="plateforge demo's matte shot"
        )

    def train(self, client: Client, steps: int, size: str) -> tuple[str, float]:
        """Train the learned matte on the keyframe mattes as a server job; its name and the seconds taken."""
        jobs = TrainingClient(client)
        started = time.monotonic()
        params: dict[str, ParamValue] = {"steps": steps, "size": size, **TRAIN_SETTINGS}
        manifest = self.write_dataset()
        job = jobs.start_training(dataset=str(manifest.resolve()), tool="matte", params=params, model_name=LEARNED)
        if not self.quiet:
            print(
                f"training {LEARNED} on {len(KEYFRAMES)} keyframe mattes: job {job.id}, {job.steps} steps",
                file=sys.stderr,
                flush=True,
            )
        last = follow(jobs.watch(job.id), quiet=self.quiet)
        if last is None or last.state != "SUCCEEDED":
            raise PlateforgeError(
                f"the demo's matte training job {job.id} did not succeed: {describe(jobs.get(job.id))}"
            )
        return LEARNED, time.monotonic() - started
