"""The training examples of a "pairs" run: input -> target frames, paired by frame number.

The manifest's ``input`` and ``target`` roles are paired by frame number; an optional ``mask``
role restricts the loss to the mask (the net still sees and writes the whole image). The input's
``config.input_channels`` are read (R, G, B, then any AOVs: a file lacking one is refused, naming
it and the channel; AOVs are extra net inputs that exposure augmentation leaves alone). A run
whose every target equals its input is refused (nothing to learn); a few such pairs are kept
with a warning. With ``classical_start`` relight-classical's 3x4 affine is fitted on every pair
(the net's start) and crops are drawn mostly where it is wrong (:func:`residual_focus`).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from plateforge.errors import ManifestError
from plateforge.exr import StrPath
from plateforge.manifest_format import Manifest, SourceFile
from plateforge_server.tools.relight.classical import fit_transform
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import (
    RGB,
    TrainFrame,
    TrainingData,
    check_same_size,
    decode_planes,
    encode_planes,
    input_colour,
    licensed_groups,
    read_planes,
    split_validation,
)

__all__ = ["load_pairs_data", "residual_focus"]

log = logging.getLogger("plateforge_server.training")
#: Crop centres drawn per frame where the classical transform is wrong (see residual_focus).
_FOCUS_SAMPLES = 4096


def load_pairs_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then load its input/target pairs (see the module doc)."""
    manifest, grouped = licensed_groups(config, manifest_path, ("input", "target"), ("mask",))
    frames: list[TrainFrame] = []
    used: list[SourceFile] = []
    input_channels = tuple(config.input_channels)
    colour = input_colour(config)  # an unknown colour space is refused before any file is read
    extra = len(input_channels) > len(RGB)
    unchanged: list[str] = []
    linear_pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (H, W, 3) before, after: the classical fit
    for pair in grouped:
        planes = {
            role: read_planes(item, None if role == "mask" else input_channels if role == "input" else RGB, colour)
            for role, item in pair.files.items()
        }
        check_same_size(pair.files, planes)
        image = encode_planes(planes["input"])
        target = encode_planes(planes["target"])
        if np.array_equal(planes["input"][:3], planes["target"]):
            unchanged.append(f"'{pair.files['target'].name}'")
        mask = np.clip(planes["mask"][0], 0.0, 1.0) if "mask" in planes else None
        if config.classical_start:
            linear_pairs.append((planes["input"][:3].transpose(1, 2, 0), planes["target"].transpose(1, 2, 0)))
        frames.append(TrainFrame(pair.frame, image, target, mask, light_channels=len(RGB) if extra else None))
        used.extend(pair.files.values())
    if unchanged and len(unchanged) == len(frames):
        raise ManifestError(
            f"manifest '{manifest.path}': every target equals its input in R, G, B ({', '.join(unchanged)}): "
            "there is no change to learn; give the relit or graded frames the 'target' role"
        )
    if unchanged:
        log.warning(
            "training targets identical to their inputs (kept, they teach 'no change'): %s", ", ".join(unchanged)
        )
    training, validation, held_out = split_validation(config, frames)
    affine = None
    if linear_pairs:
        affine = fit_transform([b for b, _ in linear_pairs], [a for _, a in linear_pairs]).affine
        rng = np.random.default_rng([config.seed, 3])
        training = tuple(dataclasses.replace(f, focus=residual_focus(rng, f, affine)) for f in training)
    return TrainingData(
        config.mode, manifest.name, training, validation, held_out, tuple(used), classical_affine=affine
    )


def residual_focus(rng: np.random.Generator, frame: TrainFrame, affine: np.ndarray) -> np.ndarray | None:
    """Pixel indices to centre crops on, drawn with probability proportional to what the fitted
    ``affine`` leaves wrong (scene-linear ``|target - affine(input)|``, summed over R, G, B).

    What no global transform does is local and often small: a practical's glowing fixture is a
    few dozen pixels holding most of the squared error, which uniform crops rarely show the net.
    Drawn in proportion to the L1 residual, crops go where the net has something to learn, in
    the measure (scene-linear) the result is judged by; 1 crop in 10 still goes anywhere."""
    before = decode_planes(frame.image[:3]).reshape(3, -1).astype(np.float64)
    after = decode_planes(frame.target).reshape(3, -1).astype(np.float64)
    residual = np.abs(after - (affine[:, :3] @ before + affine[:, 3:])).sum(axis=0)
    total = float(residual.sum())
    if not math.isfinite(total) or total <= 0:
        return None
    return np.sort(rng.choice(residual.size, size=_FOCUS_SAMPLES, p=residual / total))
