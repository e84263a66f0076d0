"""A job trains only on the dataset as it was checked at submit, against real server processes with
``--data-root`` on loopback (issue 18, item 4).

The attack: a manifest inside the data root, licensed and accepted by StartTraining, is rewritten
(or its footage replaced by a symlink) so it points at footage outside every root, after the job
was queued, before a ResumeJob, or before the server's automatic resume at start-up. The job must
fail naming the file, and no model may be published. StartTraining itself must answer quickly on
large footage: hashing is the job's first phase, and cancelling the job stops it.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from plateforge.client import Client
from plateforge.jobs_client import JobInfo, TrainingClient
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.plateforge_server.training.helpers import write_pairs
from tests.reliability.helpers import wait_until

pytestmark = pytest.mark.timeout(240)

#: A run that finishes in a few seconds on a CPU, with a checkpoint every 2 steps.
SHORT: dict[str, object] = {
    "steps": 30,
    "batch": 1,
    "crop": 16,
    "warmup": 1,
    "checkpoint_every": 2,
    "preview_every": 1000,
    "validation_every": 1000,
    "validation_size": 32,
}
#: Runs until cancelled: keeps the one worker busy so the next job waits QUEUED.
LONG: dict[str, object] = {**SHORT, "steps": 100_000, "checkpoint_every": 1000}


@dataclass
class Farm:
    base: Path
    root: Path
    outside: Path

    @property
    def jobs_dir(self) -> Path:
        return self.base / "jobs"

    @property
    def models_dir(self) -> Path:
        return self.base / "models"

    def serve(self) -> ServerProcess:
        return start_server(
            "--data-root",
            str(self.root),
            "--jobs-dir",
            str(self.jobs_dir),
            "--models-dir",
            str(self.models_dir),
        )

    def published(self) -> list[Path]:
        return sorted(self.models_dir.rglob("model.safetensors")) if self.models_dir.exists() else []


@pytest.fixture
def farm(tmp_path: Path) -> Farm:
    root, outside = tmp_path / "footage", tmp_path / "elsewhere"
    write_pairs(root / "busy", frames=1, size=32, seed=1)
    write_pairs(outside / "evil", frames=2, size=32, seed=7)
    return Farm(tmp_path, root, outside)


@pytest.fixture
def served(farm: Farm) -> Iterator[ServerProcess]:
    proc = farm.serve()
    yield proc
    proc.stop()


def _licensed(pattern: Path | str, role: str) -> str:
    return (
        f'\n[[sources]]\npath = "{pattern}"\nlicence = "CC-BY-4.0"\nrights_holder = "Test Pictures"\n'
        f'permitted_uses = ["train"]\nrole = "{role}"\n'
    )


def _point_outside(manifest: Path, farm: Farm) -> None:
    """Rewrite ``manifest`` so its sources are licensed footage outside the roots (no hashes recorded)."""
    evil = farm.outside / "evil"
    text = 'schema = "plateforge.dataset/1"\nname = "pairs-test"\n'
    manifest.write_text(
        text + _licensed(evil / "in" / "img.*.exr", "input") + _licensed(evil / "out" / "img.*.exr", "target")
    )


@contextmanager
def _jobs(proc: ServerProcess) -> Iterator[TrainingClient]:
    with Client(proc.address, token=TOKEN, retries=1, timeout=60) as client:
        yield TrainingClient(client)


def _reaches(jobs: TrainingClient, job_id: str, state: str, *, timeout: float) -> bool:
    return wait_until(lambda: jobs.get(job_id).state == state, timeout=timeout)


def _wait_step(jobs: TrainingClient, job_id: str, step: int) -> None:
    for event in jobs.watch(job_id):
        if event.job.step >= step:
            return
    raise AssertionError(f"job {job_id} ended before step {step}: {jobs.get(job_id).error}")


def _ends_failed_naming(jobs: TrainingClient, job_id: str, name: str, farm: Farm) -> JobInfo:
    final = list(jobs.watch(job_id))[-1].job
    assert final.state == "FAILED", (final.state, final.error, final.model_dir)
    assert name in final.error, final.error
    assert final.model_dir == ""
    assert farm.published() == [], "a model was published"
    assert not Path(final.job_dir, "train", "model").exists()
    return final


def test_a_manifest_rewritten_after_queueing_fails_the_job(farm: Farm, served: ServerProcess) -> None:
    manifest = write_pairs(farm.root / "shot", frames=2, size=32)
    with _jobs(served) as jobs:
        busy = jobs.start_training(dataset=str(farm.root / "busy" / "dataset.toml"), tool="look", config=LONG)
        _wait_step(jobs, busy.id, 1)
        job = jobs.start_training(dataset=str(manifest), tool="look", config=SHORT)
        assert jobs.get(job.id).state == "QUEUED"
        _point_outside(manifest, farm)
        jobs.cancel(busy.id)
        failed = _ends_failed_naming(jobs, job.id, str(manifest), farm)
        assert "changed since the job was queued" in failed.error


def test_footage_swapped_for_a_file_outside_the_roots_after_queueing_fails_the_job(
    farm: Farm, served: ServerProcess
) -> None:
    """An unregistered dataset (no hashes recorded): only the snapshot's roots check and hashes stop it."""
    manifest = write_pairs(farm.root / "shot", frames=2, size=32, do_register=False)
    swapped = farm.root / "shot" / "in" / "img.1002.exr"
    with _jobs(served) as jobs:
        busy = jobs.start_training(dataset=str(farm.root / "busy" / "dataset.toml"), tool="look", config=LONG)
        _wait_step(jobs, busy.id, 1)
        job = jobs.start_training(dataset=str(manifest), tool="look", config=SHORT)
        swapped.unlink()
        swapped.symlink_to(farm.outside / "evil" / "in" / "img.1002.exr")
        jobs.cancel(busy.id)
        failed = _ends_failed_naming(jobs, job.id, "img.1002.exr", farm)
        assert "outside the folders this server may read" in failed.error


def test_footage_changed_after_the_hash_phase_fails_the_resumed_job(farm: Farm, served: ServerProcess) -> None:
    manifest = write_pairs(farm.root / "shot", frames=2, size=32, do_register=False)
    with _jobs(served) as jobs:
        job = jobs.start_training(dataset=str(manifest), tool="look", config=LONG)
        _wait_step(jobs, job.id, 2)  # hashed, training
        jobs.cancel(job.id)
        assert _reaches(jobs, job.id, "CANCELLED", timeout=60)
        target = farm.root / "shot" / "out" / "img.1001.exr"
        target.write_bytes((farm.outside / "evil" / "out" / "img.1001.exr").read_bytes())
        jobs.resume(job.id)
        _ends_failed_naming(jobs, job.id, "out/img.1001.exr", farm)


def test_a_manifest_rewritten_before_resume_fails_the_job(farm: Farm, served: ServerProcess) -> None:
    manifest = write_pairs(farm.root / "shot", frames=2, size=32)
    with _jobs(served) as jobs:
        job = jobs.start_training(dataset=str(manifest), tool="look", config=SHORT)
        _wait_step(jobs, job.id, 2)
        jobs.cancel(job.id)
        assert _reaches(jobs, job.id, "CANCELLED", timeout=60)
        _point_outside(manifest, farm)
        assert jobs.resume(job.id).state in ("QUEUED", "RUNNING")
        _ends_failed_naming(jobs, job.id, str(manifest), farm)


def test_a_manifest_rewritten_before_the_automatic_resume_at_start_up_fails_the_job(farm: Farm) -> None:
    manifest = write_pairs(farm.root / "shot", frames=2, size=32)
    proc = farm.serve()
    try:
        with _jobs(proc) as jobs:
            job = jobs.start_training(dataset=str(manifest), tool="look", config=SHORT)
            _wait_step(jobs, job.id, 2)
    finally:
        proc.stop(signal.SIGTERM)  # the running job checkpoints and is recorded INTERRUPTED
    _point_outside(manifest, farm)
    proc = farm.serve()  # resumes the job by itself
    try:
        with _jobs(proc) as jobs:
            _ends_failed_naming(jobs, job.id, str(manifest), farm)
    finally:
        proc.stop()


def test_an_unchanged_dataset_still_trains_and_publishes(farm: Farm, served: ServerProcess) -> None:
    manifest = write_pairs(farm.root / "shot", frames=2, size=32, do_register=False)
    with _jobs(served) as jobs:
        job = jobs.start_training(dataset=str(manifest), tool="look", config={**SHORT, "steps": 4})
        final = list(jobs.watch(job.id))[-1].job
        assert final.state == "SUCCEEDED", final.error
        assert len(farm.published()) == 1


def test_start_training_answers_fast_on_large_footage_and_the_hash_phase_can_be_cancelled(
    farm: Farm, served: ServerProcess
) -> None:
    folder = farm.root / "big"
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    size = 1 << 29  # 4 files of 512 MiB, sparse: no disk, but every byte must be read to hash them
    paths = [folder / role / f"big.{n}.exr" for role in ("in", "out") for n in (1001, 1002)]
    for path in paths:
        with open(path, "wb") as handle:
            handle.truncate(size)
    manifest = folder / "dataset.toml"
    text = 'schema = "plateforge.dataset/1"\nname = "big"\n'
    manifest.write_text(text + _licensed("in/big.*.exr", "input") + _licensed("out/big.*.exr", "target"))
    began = time.monotonic()
    digest = hashlib.sha256()
    with open(paths[0], "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    hash_seconds = (time.monotonic() - began) * len(paths)  # what hashing inside the call would cost
    with _jobs(served) as jobs:
        began = time.monotonic()
        job = jobs.start_training(dataset=str(manifest), tool="look", config=SHORT)
        answered = time.monotonic() - began
        assert answered < min(1.0, hash_seconds / 3), (answered, hash_seconds)
        assert _reaches(jobs, job.id, "RUNNING", timeout=30)
        began = time.monotonic()
        jobs.cancel(job.id)
        assert _reaches(jobs, job.id, "CANCELLED", timeout=hash_seconds)
        assert time.monotonic() - began < hash_seconds, "the hash phase did not stop when cancelled"
        assert "hashing" in jobs.get(job.id).error
