"""A show made for the lineage tests, by the real commands: three dataset manifests with
contributors, a model trained on the first (`plateforge train`), a fine-tune of it on the second
(`plateforge train --init`), and 40 output EXRs those two models made through a real server
(`plateforge process`), with the provenance headers the server and the CLI write.

    data/shotA   manifest (CC-BY-4.0): inputs by Ben Okafor (plate photography), targets by
                 Ana Ruiz (keyframe matte)                                -> model shotA-look
    data/shotB   manifest (LicenseRef-shotB): targets by Cleo Park (grade) -> shotB-look, --init shotA-look
    data/shotC   manifest (LicenseRef-shotC): inputs by Dev Shah (paint fix); trains nothing
    out/a-p1     shotA-look on plates/p1, frames 1001-1010
    out/a-c      shotA-look on shotC's input frames 1001-1010 (made straight from shotC's files)
    out/b-p1     shotB-look on plates/p1, frames 1001-1010
    out/b-p2     shotB-look on plates/p2, frames 1001-1010 (written in 2020: for --since)
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.manifests import Contributor, Source, write_manifest
from tests.conftest import start_server

FRAMES = range(1001, 1011)
#: 2020-06-01, UTC, in nanoseconds: when out/b-p2's frames claim to have been written.
OLD_NS = 1_590_969_600 * 1_000_000_000
FAST = ["--steps", "4", "--param", "batch=1", "--param", "crop=16", "--param", "warmup=1"]
FAST += ["--param", "validation_size=32", "--param", "lr=0.001"]


@dataclass(frozen=True)
class Tree:
    root: Path
    model_a: Path
    model_b: Path

    @property
    def outputs(self) -> list[Path]:
        return sorted((self.root / "out").rglob("*.exr"))


def _images(folder: Path, name: str, frames: range, seed: int, size: int = 32) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in frames:
        image = rng.uniform(0.02, 1.0, size=(size, size, 3)).astype(np.float32)
        write_exr(folder / f"{name}.{number}.exr", Frame.from_array(image, names=("R", "G", "B")))


def _dataset(
    folder: Path, *, name: str, licence: str, seed: int, frames: range, inputs: tuple[Contributor, ...] = (),
    targets: tuple[Contributor, ...] = (),
) -> Path:  # fmt: skip
    from plateforge.manifest_format import register

    _images(folder / "in", "img", frames, seed)
    _images(folder / "out", "img", frames, seed + 100)
    sources = [
        Source("in/img.*.exr", licence, "Test Pictures", ("train",), "input", contributors=inputs),
        Source("out/img.*.exr", licence, "Test Pictures", ("train",), "target", contributors=targets),
    ]
    manifest = write_manifest(folder / "dataset.toml", name=name, sources=sources)
    register(manifest)
    return manifest


def _train(address: str, token: str, *args: str) -> Path:
    from plateforge.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", *args, *FAST, "--server", address, "--token", token])
    assert code == 0, out.getvalue()
    return Path(out.getvalue().strip().splitlines()[-1])


def _process(server_env: dict[str, str], model: str, plate: str, output: Path) -> None:
    command = [sys.executable, "-m", "plateforge.cli.main", "process", "--model", model, "--input", plate]
    command += ["--frames", "1001-1010", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=server_env)
    assert result.returncode == 0, result.stderr


def build(root: Path) -> Tree:
    """Make the show under ``root`` (see the module doc)."""
    from plateforge_server.modelcard import publish_model
    from tests.plateforge_server.jobs.test_jobs import TOKEN, training_server

    data = root / "data"
    shot_a = _dataset(
        data / "shotA", name="shotA", licence="CC-BY-4.0", seed=1, frames=range(1001, 1003),
        inputs=(Contributor("Ben Okafor", "plate photography"),),
        targets=(Contributor("Ana Ruiz", "keyframe matte"),),
    )  # fmt: skip
    shot_b = _dataset(
        data / "shotB", name="shotB", licence="LicenseRef-shotB", seed=2, frames=range(1001, 1003),
        targets=(Contributor("Cleo Park", "grade"),),
    )  # fmt: skip
    _dataset(
        data / "shotC", name="shotC", licence="LicenseRef-shotC", seed=3, frames=FRAMES,
        inputs=(Contributor("Dev Shah", "paint fix"),),
    )  # fmt: skip
    _images(root / "plates" / "p1", "p1", FRAMES, seed=4)
    _images(root / "plates" / "p2", "p2", FRAMES, seed=5)

    with training_server(root / "jobs") as server:
        trained_a = _train(server.address, TOKEN, "--dataset", str(shot_a), "--tool", "look", "--name", "shotA-look")
        trained_b = _train(
            server.address, TOKEN, "--dataset", str(shot_b), "--tool", "look", "--name", "shotB-look",
            "--init", str(trained_a),
        )  # fmt: skip
    models = root / "models"
    model_a = publish_model(trained_a, models)
    model_b = publish_model(trained_b, models)

    proc = start_server("--models-dir", str(models))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
        env |= {"PLATEFORGE_SERVER": proc.address, "PLATEFORGE_TOKEN": proc.token or ""}
        env["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
        out = root / "out"
        _process(env, "shotA-look", str(root / "plates/p1/p1.####.exr"), out / "a-p1" / "a-p1.####.exr")
        _process(env, "shotA-look", str(data / "shotC/in/img.####.exr"), out / "a-c" / "a-c.####.exr")
        _process(env, "shotB-look", str(root / "plates/p1/p1.####.exr"), out / "b-p1" / "b-p1.####.exr")
        _process(env, "shotB-look", str(root / "plates/p2/p2.####.exr"), out / "b-p2" / "b-p2.####.exr")
    finally:
        proc.stop()
    for frame in (root / "out" / "b-p2").glob("*.exr"):
        os.utime(frame, ns=(OLD_NS, OLD_NS))
    return Tree(root, model_a, model_b)
