"""Training samples for the learned matte (``"matte"`` mode): a few keyframe mattes teach the shot.

An artist pulls the matte by hand on a few keyframes (``config.min_keyframes`` at least, 2 to 5
is the intended range); the net learns from them to correct the classical difference key on
every other frame. Read top to bottom:

1. **Licence first**, as in every mode: :func:`~plateforge.server.datasets.check_for_training`
   before any frame is opened. The manifest gives ``plate`` and ``clean_plate`` frames (paired by
   frame number; every plate needs its clean plate) and ``matte`` frames, the keyframes: a
   matte's alpha (or only channel) is the truth for its frame. A matte with no plate or clean
   plate of its frame is refused, naming it.
2. **Keyframes.** A keyframe whose matte is all 0 or all 1 has no edge to learn from: it is
   still trained on, but does not count towards ``min_keyframes``. Fewer counted keyframes than
   that is a :class:`~plateforge.errors.ManifestError` that names the frames that have mattes,
   the empty or full ones, and how many more are needed.
3. **Samples.** Per keyframe, a :class:`~plateforge.server.training.data.TrainFrame` holding the
   encoded :func:`~plateforge.server.nets.matte_guide.matte_planes` (plate, clean plate, classical
   key) and the encoded matte as target (not light: exposure jitter scales the plates only).
   The loss counts only inside the key's unknown band
   (:func:`~plateforge.server.nets.matte_guide.unknown_band`): outside it the runtime keeps the
   classical key whatever the net says, so nothing there is the net's to learn. Crops centre on
   the band or on the subject's edge (``focus``: where the matte or the key is neither 0 nor 1,
   or they disagree, grown by a few pixels), where every mistake is.
4. **Loss**: :data:`LOSS_SETTINGS`, which the ``matte`` jobs and the evaluation start from (a
   request's own values win): mostly squared error, no SSIM. The net starts as the key, exactly
   right on most band pixels (plain background, plain subject); there L1's gradient is a sign
   that flips with any change, so L1 alone pins the net at the key (measured: a single batch,
   50 Adam steps, L1 did not move off the key's 0.0316; with squared error weighted 40 it fell to
   0.017). Squared error pulls hardest where the key is most wrong: soft edges and hair.
5. **Validation**: a window around the edge of the last keyframe (a training frame: keyframes are
   too few to hold one out; the card says so), whose classical key is the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import cv2
import numpy as np

from plateforge.errors import ManifestError
from plateforge.exr import StrPath
from plateforge.server.datasets.manifest import Manifest, SourceFile, check_for_training, load_manifest, pairs
from plateforge.server.nets.matte_guide import KEY_CHANNEL, LIGHT_CHANNELS, matte_planes, unknown_band
from plateforge.server.training.config import MATTE_LOSS_SETTINGS, TrainConfig
from plateforge.server.training.data import (
    RGB,
    Batch,
    TrainFrame,
    TrainingData,
    check_same_size,
    encode_planes,
    read_planes,
    validation_window,
)

__all__ = ["LOSS_SETTINGS", "load_matte_data"]

#: TrainConfig loss fields a "matte" run starts from (see the module doc, step 4; applied to every
#: run's config by :func:`~plateforge.server.training.config.with_mode_defaults`).
LOSS_SETTINGS: Final[Mapping[str, float]] = MATTE_LOSS_SETTINGS

#: Pixels the edge region (where crops centre) is grown by.
_EDGE_GROW = 6


def load_matte_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then build the ``"matte"`` samples (see the module doc)."""
    manifest = load_manifest(manifest_path)
    licensed = check_for_training(manifest)
    # A matte (or plate) without the plate and clean plate of its frame is refused here, naming it.
    grouped = pairs(licensed, roles=("plate", "clean_plate"), optional=("matte",))
    keyed = [pair for pair in grouped if "matte" in pair.files]
    if not keyed:
        raise ManifestError(
            f"manifest '{manifest.path}' has no keyframe mattes (role 'matte'); the 'matte' mode needs at least "
            f"{config.min_keyframes} frames with a plate, a clean_plate and a matte"
        )
    frames: list[TrainFrame] = []
    used: list[SourceFile] = []
    flat: list[int] = []
    for pair in keyed:
        planes = {role: read_planes(item, RGB if role != "matte" else None) for role, item in pair.files.items()}
        check_same_size(pair.files, planes)
        plate = np.ascontiguousarray(planes["plate"].transpose(1, 2, 0))
        clean = np.ascontiguousarray(planes["clean_plate"].transpose(1, 2, 0))
        alpha = np.clip(planes["matte"][0], 0.0, 1.0).astype(np.float32)
        if alpha.min() >= 1.0 or alpha.max() <= 0.0:
            flat.append(pair.frame)
        guide = matte_planes(plate, clean)
        band = unknown_band(guide[:, :, KEY_CHANNEL])
        focus = band | _edge(alpha, guide[:, :, KEY_CHANNEL])
        frames.append(
            TrainFrame(
                number=pair.frame,
                image=encode_planes(np.ascontiguousarray(guide.transpose(2, 0, 1))),
                target=encode_planes(alpha[None]),
                mask=band.astype(np.float32),
                light_channels=LIGHT_CHANNELS,
                focus=np.flatnonzero(focus) if focus.any() else None,
                target_light=False,
            )
        )
        used.extend(pair.files.values())
    counted = len(frames) - len(flat)
    if counted < config.min_keyframes:
        numbers = [f.number for f in frames]
        detail = f"; frame(s) {flat} have an empty or full matte (no edge to learn from)" if flat else ""
        raise ManifestError(
            f"manifest '{manifest.path}': the 'matte' mode needs at least {config.min_keyframes} keyframe mattes "
            f"with an edge, it has {counted} (mattes for frames {numbers}{detail}); add "
            f"{config.min_keyframes - counted} more role 'matte' file(s) for frames that have a plate and clean_plate"
        )
    sizes = {(f.height, f.width) for f in frames}
    if len(sizes) > 1:
        raise ManifestError(
            f"manifest '{manifest.path}': the keyframes differ in size ({sorted(sizes)}); one shot a run"
        )
    return TrainingData(config.mode, manifest.name, tuple(frames), _validation(config, frames[-1]), False, tuple(used))


def _edge(alpha: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Where the matte or the key is between 0 and 1, or they disagree, grown by :data:`_EDGE_GROW`."""
    soft = ((alpha > 0) & (alpha < 1)) | ((key > 0) & (key < 1)) | (np.abs(alpha - key) > 0.05)
    side = 2 * _EDGE_GROW + 1
    grown: np.ndarray = cv2.dilate(soft.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    return grown


def _validation(config: TrainConfig, frame: TrainFrame) -> Batch:
    """A window of at most ``validation_size`` a side centred on the frame's edge (or its middle)."""
    side_h, side_w = min(frame.height, config.validation_size), min(frame.width, config.validation_size)
    if frame.focus is not None and frame.focus.size:
        ys, xs = np.divmod(frame.focus, frame.width)
        cy, cx = int(np.median(ys)), int(np.median(xs))
    else:
        cy, cx = frame.height // 2, frame.width // 2
    top = min(max(0, cy - side_h // 2), frame.height - side_h)
    left = min(max(0, cx - side_w // 2), frame.width - side_w)
    rows, cols = slice(top, top + side_h), slice(left, left + side_w)
    window = TrainFrame(
        number=frame.number,
        image=np.ascontiguousarray(frame.image[:, rows, cols]),
        target=np.ascontiguousarray(frame.target[:, rows, cols]),
        mask=None if frame.mask is None else np.ascontiguousarray(frame.mask[rows, cols]),
        light_channels=frame.light_channels,
        target_light=False,
    )
    return validation_window(config, window)
