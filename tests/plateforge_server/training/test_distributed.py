"""Data-parallel training under the real torchrun: two CPU processes on the gloo backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plateforge_server.modelcard import verify_model
from plateforge_server.training import train
from plateforge_server.training.checkpoints import checkpoint_name, list_checkpoints
from plateforge_server.training.run import load_config
from tests.plateforge_server.training.helpers import write_pairs

PARAMS = [
    "steps=6", "batch=2", "crop=32", "lr=1e-3", "warmup=2", "checkpoint_every=3", "preview_every=1000",
    "validation_every=1000", "validation_size=64", "device=cpu", "tool=look",
]  # fmt: skip
DONE = re.compile(r"rank (\d)/2 done at step (\d+) \(resumed from (\d+)\); weights ([0-9a-f]{64})")


def torchrun(manifest: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[int, tuple[int, int, str]]]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "plateforge_server.training.run", "--dataset", str(manifest), "--out", str(out), "--log-every", "1",
    ]  # fmt: skip
    for param in PARAMS:
        command += ["--param", param]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    ranks = {int(m[1]): (int(m[2]), int(m[3]), m[4]) for m in DONE.finditer(done.stderr)}
    return done, ranks


@pytest.mark.slow
def test_two_gloo_ranks_train_one_model_and_resume_exactly(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=3, size=64)
    first, ranks = torchrun(manifest, tmp_path / "run")
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(ranks) == [0, 1], first.stderr[-3000:]
    assert ranks[0] == ranks[1] and ranks[0][:2] == (6, 0)  # DDP kept both ranks' weights identical
    model_dir = Path(first.stdout.strip().splitlines()[-1])
    card = verify_model(model_dir)
    assert card.training["world_size"] == 2 and card.metrics["steps"] == 6
    assert first.stderr.count("step 6/6") == 1  # only rank 0 reports and writes

    # Two ranks see twice the crops a step: not the single-process run's weights.
    single = train(load_config(None, PARAMS), manifest_path=manifest, out_dir=tmp_path / "single")
    assert single.weights_sha256 != ranks[0][2]

    # Lose the last checkpoint (a node died after step 3): the same command resumes
    # from step 3 and ends with exactly the same weights, every rank's crops restored.
    steps = sorted(s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints"))
    assert steps == [3, 6]
    (tmp_path / "run" / "checkpoints" / checkpoint_name(6)).unlink()
    again, resumed = torchrun(manifest, tmp_path / "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert resumed[0] == resumed[1] == (6, 3, ranks[0][2])


def test_a_bad_config_is_refused_before_joining(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "plateforge_server.training.run", "--dataset", "x.toml", "--out", str(tmp_path),
         "--param", "stepz=3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "unknown field(s) ['stepz']" in done.stderr
