"""Models trained for a few steps through the real server, for the export tests.

Each learned model type is trained by the Training service (a real server on loopback, a job per
model), published into a models folder, and then given a perturbed copy (``VERSION``): a few
steps leave a residual net's zero-initialised head nearly zero, and model selection may publish
the untrained net (exactly the classical result), which would let a broken export of the net
itself pass. The copy keeps the trained card (its sources and licences) under a new version, with
every weight moved by deterministic noise, so the net's whole path shows in the output.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from plateforge.client import Client
from plateforge.jobs_client import TrainingClient
from plateforge.manifest_format import register
from plateforge.shots.dailies import make_matte_shot
from plateforge_server.app import ServerConfig, serving
from plateforge_server.modelcard import load_card, load_weights, save_model
from plateforge_server.tools.matte.evaluation import write_matte_dataset
from tests.plateforge_server.tools.relight.test_learned import WITH_AOVS, write_relight_pairs
from tests.plateforge_server.training.helpers import write_pairs, write_shot_dataset

__all__ = ["TOKEN", "VERSION", "Trained", "allow", "perturbed_copy", "serve_models", "train_all"]

TOKEN = "export-test-token"
#: The version of the perturbed copies the tests export.
VERSION = "perturbed"
#: A few steps of the small net on 16-pixel crops: enough to run every part of training.
_TINY: dict[str, object] = {
    "steps": 3,
    "batch": 1,
    "crop": 16,
    "warmup": 1,
    "lr": 1e-3,
    "checkpoint_every": 1000,
    "preview_every": 1000,
    "validation_every": 1000,
    "validation_size": 32,
    "size": "small",
}


@dataclass(frozen=True)
class Trained:
    """One trained model: its name, the tool it was trained as, and its folder in the models dir."""

    name: str
    tool: str
    folder: Path


def allow(manifest: Path, *uses: str) -> Path:
    """``manifest`` with every source's permitted uses set to ``uses``, registered again."""
    listed = ", ".join(f'"{u}"' for u in uses)
    text = re.sub(r"permitted_uses = \[[^\]]*\]", f"permitted_uses = [{listed}]", manifest.read_text())
    manifest.write_text(text)
    register(manifest)
    return manifest


def datasets(root: Path, uses: tuple[str, ...]) -> dict[str, tuple[Path, dict[str, object]]]:
    """name -> (manifest, training config) for each learned model type."""
    pairs = allow(write_pairs(root / "pairs", frames=2, size=48, do_register=False), *uses)
    shot = allow(write_shot_dataset(root / "shot"), *uses)
    matte = allow(
        write_matte_dataset(make_matte_shot(width=96, height=64, frames=3, seed=1), root / "matte", (0, 2)), *uses
    )
    relit = allow(write_relight_pairs(root / "relit"), *uses)
    return {
        "look": (pairs, {"tool": "look"}),  # classical_start: an affine-unet
        # the learned relight reading normals and positions after R, G, B (input_channels)
        "relight": (relit, {"tool": "relight", "input_channels": list(WITH_AOVS)}),
        "grade": (pairs, {"tool": "grade"}),  # a plain pairs unet
        "paint": (shot, {"tool": "paint", "mode": "inpaint"}),  # an inpainting unet (plate + mask)
        "cleanup": (shot, {"tool": "cleanup"}),  # the guided cleanup (classical fill as a guide)
        "matte": (matte, {"tool": "matte"}),  # the matte on the classical key
    }


def train_all(
    root: Path, *, uses: tuple[str, ...] = ("train", "distribute"), only: tuple[str, ...] = ()
) -> list[Trained]:
    """Train each model type through a real server's Training service; the published folders."""
    models_dir = root / "models"
    config = ServerConfig(token=TOKEN, tools=(), jobs_dir=root / "jobs", models_dir=models_dir, grace=2.0)
    trained = []
    with serving(config) as running, Client(running.address, token=TOKEN, timeout=120.0) as client:
        assert running.jobs is not None
        jobs = TrainingClient(client)
        for name, (manifest, extra) in datasets(root / "data", uses).items():
            if only and name not in only:
                continue
            tool = str(extra["tool"])
            job = jobs.start_training(
                dataset=str(manifest), tool=tool, config={**_TINY, **extra}, model_name=f"x-{name}"
            )
            record = running.jobs.wait(job.id, timeout=600)
            assert record.state == "SUCCEEDED", (name, record.state, record.error)
            info = jobs.get(job.id)
            trained.append(Trained(f"x-{name}", tool, Path(info.model_dir)))
    return trained


def perturbed_copy(model: Trained, models_dir: Path, *, seed: int = 0) -> Path:
    """A copy of ``model`` under :data:`VERSION` with every floating weight moved by noise."""
    card = load_card(model.folder)
    tensors = load_weights(model.folder)
    generator = torch.Generator().manual_seed(seed)
    moved = {}
    for key, value in tensors.items():
        if value.is_floating_point() and "classical_affine" not in key:
            noise = torch.randn(value.shape, generator=generator) * (0.05 + 0.1 * value.abs().mean())
            value = value + noise
        moved[key] = value
    target = models_dir / card.name / VERSION
    save_model(target, tensors=moved, card=dataclasses.replace(card, version=VERSION, weights_sha256=None))
    return target


@contextmanager
def serve_models(models_dir: Path) -> Iterator[str]:
    """A server on loopback serving ``models_dir``; its address."""
    config = ServerConfig(token=TOKEN, tools=(), models_dir=models_dir, grace=2.0)
    with serving(config) as running:
        yield running.address
