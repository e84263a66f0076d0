"""The inpaint net's training examples (tools/inpaint/examples.py) on a real synthetic shot: the
plate is its own target, holes are cut only where the shot's roto is clear, the net sees the plate
with the holes zeroed plus the hole mask, and the loss counts in the holes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from plateforge_server.tools.inpaint.examples import cut_holes, load_inpaint_data, random_holes
from plateforge_server.training.data import Sampler, load_training_data
from tests.plateforge_server.training.helpers import fast, write_shot_dataset


def test_holes_are_cut_where_the_roto_is_clear_and_the_plate_is_the_target(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")
    config = fast(mode="inpaint", batch=4, crop=48)
    data = load_inpaint_data(config, manifest)
    assert data.cut is cut_holes and data.held_out and len(data.frames) == 3
    for frame in data.frames:
        assert frame.target is frame.image and frame.mask is not None and frame.mask.max() > 0
    batch = Sampler(config, data).batch()
    assert batch.inputs.shape == (4, 4, 48, 48) and batch.target.shape == (4, 3, 48, 48)
    hole = batch.weight[:, 0]
    # Holes are whole where the roto is clear and fade under its soft edge.
    assert ((hole >= 0) & (hole <= 1)).all() and (hole == 1).any() and 0 < float(hole.mean()) < 1
    # Inside a hole the net sees nothing of the plate, and the hole mask itself (encoded).
    inside = hole[:, None].expand(-1, 3, -1, -1) == 1
    assert torch.count_nonzero(batch.inputs[:, :3][inside]) == 0
    assert torch.allclose(batch.inputs[:, 3], torch.log1p(hole))
    # Outside the holes the net sees the plate as it is: the target.
    outside = hole[:, None].expand(-1, 3, -1, -1) == 0
    assert torch.equal(batch.inputs[:, :3][outside], batch.target[outside])
    # The validation holes are fixed: the same data loaded twice gives the same batch.
    again = load_training_data(config, manifest)  # through the mode's tool
    assert torch.equal(again.validation.inputs, data.validation.inputs)


def test_no_hole_is_cut_under_the_shots_roto() -> None:
    rng = np.random.default_rng(3)
    images = rng.uniform(0.1, 1.0, size=(2, 3, 40, 40)).astype(np.float32)
    roto = np.zeros((40, 40), np.float32)
    roto[:, :20] = 1.0  # the left half is under the roto: its truth is unknown
    batch = cut_holes(rng, images, images, [roto, None])
    assert float(batch.weight[0, 0, :, :20].max()) == 0.0 and float(batch.weight[0, 0, :, 20:].max()) == 1.0
    assert float(batch.weight[1, 0].max()) == 1.0


def test_random_holes_are_binary_boxes_and_strokes_drawn_from_the_seed() -> None:
    holes = random_holes(np.random.default_rng(7), 60, 90)
    assert holes.shape == (60, 90) and holes.dtype == np.float32
    assert set(np.unique(holes)) <= {0.0, 1.0} and 0.0 < float(holes.mean()) < 0.9
    assert np.array_equal(holes, random_holes(np.random.default_rng(7), 60, 90))
    assert not np.array_equal(holes, random_holes(np.random.default_rng(8), 60, 90))
