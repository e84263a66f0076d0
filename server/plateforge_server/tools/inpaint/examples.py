"""The training examples of an "inpaint" run: the plate, with random holes to fill.

The manifest's ``plate`` role is read with an optional ``mask`` (the shot's own roto). Random
holes (strokes and boxes, :func:`random_holes`) are cut in every
batch (:func:`cut_holes`) only where the shot's mask is clear, so the truth under every hole is
known; the net sees the plate with the holes zeroed plus the hole mask, and learns to fill them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch

from plateforge.exr import StrPath
from plateforge.manifest_format import Manifest, SourceFile
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import (
    RGB,
    Batch,
    TrainFrame,
    TrainingData,
    check_same_size,
    encode_planes,
    input_colour,
    licensed_groups,
    read_planes,
    split_validation,
)

__all__ = ["cut_holes", "load_inpaint_data", "random_holes"]


def load_inpaint_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then load its plates (and rotos); batches get their holes
    from :func:`cut_holes`."""
    manifest, grouped = licensed_groups(config, manifest_path, ("plate",), ("mask",))
    colour = input_colour(config)  # an unknown colour space is refused before any file is read
    frames: list[TrainFrame] = []
    used: list[SourceFile] = []
    for pair in grouped:
        planes = {role: read_planes(item, None if role == "mask" else RGB, colour) for role, item in pair.files.items()}
        check_same_size(pair.files, planes)
        image = encode_planes(planes["plate"])
        mask = np.clip(planes["mask"][0], 0.0, 1.0) if "mask" in planes else None
        frames.append(TrainFrame(pair.frame, image, image, mask))
        used.extend(pair.files.values())
    training, validation, held_out = split_validation(config, frames, cut=cut_holes)
    return TrainingData(config.mode, manifest.name, training, validation, held_out, tuple(used), cut=cut_holes)


def cut_holes(
    rng: np.random.Generator, images: np.ndarray, targets: np.ndarray, masks: Sequence[np.ndarray | None]
) -> Batch:
    """The batch an inpaint net trains on: each crop's plate with random holes (from ``rng``)
    zeroed, plus the encoded hole mask as a fourth input; the loss counts inside the holes."""
    height, width = images.shape[2:]
    holes = []
    for mask in masks:
        hole = random_holes(rng, height, width)
        if mask is not None:
            hole = hole * (1.0 - mask)  # never under the shot's own roto: the truth there is unknown
        holes.append(hole.astype(np.float32))
    hole = np.stack(holes)[:, None]
    # Zeroing encoded values zeroes the linear ones too (encode(0) == 0); soft hole edges fade out.
    inputs = np.concatenate([images * (1.0 - hole), encode_planes(hole)], axis=1).astype(np.float32)
    return Batch(
        torch.from_numpy(np.ascontiguousarray(inputs)),
        torch.from_numpy(np.ascontiguousarray(targets)),
        torch.from_numpy(np.ascontiguousarray(hole)),
    )


def random_holes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ``(H, W)`` float32 hole mask in {0, 1}: one to three boxes and one to three brush strokes."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + np.float32(0.5)
    hole = np.zeros((height, width), dtype=bool)
    side = min(height, width)
    for _ in range(int(rng.integers(1, 4))):  # boxes, 8 % to 35 % of the side
        h, w = (rng.uniform(0.08, 0.35, size=2) * side).astype(int) + 1
        top, left = int(rng.integers(0, max(1, height - h + 1))), int(rng.integers(0, max(1, width - w + 1)))
        hole[top : top + h, left : left + w] = True
    for _ in range(int(rng.integers(1, 4))):  # strokes: a polyline of 2-4 segments, round brush
        radius = max(1.0, rng.uniform(0.02, 0.07) * side)
        points = [(rng.uniform(0, width), rng.uniform(0, height))]
        for _ in range(int(rng.integers(2, 5))):
            angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.4) * side
            x, y = points[-1]
            points.append((x + length * math.cos(angle), y + length * math.sin(angle)))
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
            hole |= (xs - (x0 + t * dx)) ** 2 + (ys - (y0 + t * dy)) ** 2 <= radius * radius
    return hole.astype(np.float32)
