"""Tiny datasets for the training tests: numpy pairs and synthetic shots, written as EXRs with a manifest."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.manifest_format import register
from plateforge.shots.synthetic import make_shot, write_shot
from plateforge_server.training import TrainConfig


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test (autouse where a module imports it): the trained figures
    the tests compare with then do not depend on the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: Gains of the "look" the pair task teaches, applied only where red dominates green.
GAINS = np.array([0.6, 1.0, 1.5], np.float32)

#: A fast config: the small preset on 32-pixel crops, nothing written between steps unless asked.
FAST = TrainConfig(
    steps=12,
    batch=2,
    crop=32,
    lr=1e-3,
    warmup=2,
    checkpoint_every=1000,
    preview_every=1000,
    validation_every=1000,
    validation_size=64,
    exposure_jitter=0.5,
    device="cpu",
)


def fast(**changes: object) -> TrainConfig:
    return dataclasses.replace(FAST, **changes)  # type: ignore[arg-type]


def look(image: np.ndarray) -> np.ndarray:
    """The change to learn: a colour gain where R > G (a ratio, so it is exposure-invariant)."""
    key = (image[..., 0] > image[..., 1])[..., None]
    return np.where(key, image * GAINS, image).astype(np.float32)


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.full((size, size, 3), 0.05, np.float32)
    for _ in range(6):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35)
        colour = rng.uniform(0.05, 1.2, size=3).astype(np.float32)
        blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))[..., None]
        image += blob * colour
    return image


def _source(pattern: str, role: str, licence: str = "CC-BY-4.0", uses: str = '["train"]') -> str:
    return (
        f'\n[[sources]]\npath = "{pattern}"\nlicence = "{licence}"\nrights_holder = "Test Pictures"\n'
        f'permitted_uses = {uses}\nrole = "{role}"\n'
    )


def write_pairs(folder: Path, *, frames: int = 3, size: int = 64, seed: int = 0, do_register: bool = True) -> Path:
    """``frames`` input/target EXR pairs (target = :func:`look` of the input) and a manifest; its path."""
    rng = np.random.default_rng(seed)
    (folder / "in").mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    for number in range(1001, 1001 + frames):
        image = _image(rng, size)
        write_exr(folder / "in" / f"img.{number}.exr", Frame.from_array(image, names=("R", "G", "B")))
        write_exr(folder / "out" / f"img.{number}.exr", Frame.from_array(look(image), names=("R", "G", "B")))
    manifest = folder / "dataset.toml"
    text = 'schema = "plateforge.dataset/1"\nname = "pairs-test"\n'
    text += _source("in/img.*.exr", "input") + _source("out/img.*.exr", "target")
    manifest.write_text(text, encoding="utf-8")
    if do_register:
        register(manifest)
    return manifest


def write_shot_dataset(folder: Path) -> Path:
    """A 96x64, 4-frame synthetic shot (plates and roto masks) and its manifest; its path."""
    write_shot(make_shot(width=96, height=64, frames=4), folder)
    manifest = folder / "dataset.toml"
    text = 'schema = "plateforge.dataset/1"\nname = "shot-test"\n'
    text += _source("plate.*.exr", "plate") + _source("mask.*.exr", "mask")
    manifest.write_text(text, encoding="utf-8")
    register(manifest)
    return manifest
