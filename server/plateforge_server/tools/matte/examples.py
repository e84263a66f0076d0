"""Training samples for the learned matte (``"matte"`` mode): a few keyframe mattes teach the shot.

An artist pulls the matte by hand on a few keyframes (``config.min_keyframes`` at least, 2 to 5
is the intended range); the net learns from them to correct the classical difference key on
every other frame. Read top to bottom:

1. **Licence first**, as in every mode: :func:`~plateforge_server.datasets.check_for_training`
   before any frame is opened. The manifest gives ``plate`` and ``clean_plate`` frames (paired by
   frame number; every plate needs its clean plate) and ``matte`` frames, the keyframes: a
   matte's alpha (or only channel) is the truth for its frame. A matte with no plate or clean
   plate of its frame is refused, naming it.
2. **Keyframes.** A keyframe whose matte is all 0 or all 1 has no edge to learn from: it is
   still trained on, but does not count towards ``min_keyframes``. Fewer counted keyframes than
   that is a :class:`~plateforge.errors.ManifestError` that names the frames that have mattes,
   the empty or full ones, and how many more are needed.
3. **Samples.** Per keyframe, a :class:`~plateforge_server.training.data.TrainFrame` holding the
   encoded :func:`~plateforge_server.tools.matte.guide.matte_planes` (plate, clean plate, classical
   key) and the encoded matte as target (not light: exposure jitter scales the plates only).
   The loss counts only inside the key's unknown band
   (:func:`~plateforge_server.tools.matte.guide.band_of`: its shadow included): outside it the runtime keeps the
   classical key whatever the net says, so nothing there is the net's to learn. Crops centre on
   the band or on the subject's edge (``focus``: where the matte or the key is neither 0 nor 1,
   or they disagree, grown by a few pixels), where every mistake is.
4. **Loss**: :data:`LOSS_SETTINGS`, which the ``matte`` jobs and the evaluation start from (a
   request's own values win): mostly squared error, no SSIM. The net starts as the key, exactly
   right on most band pixels (plain background, plain subject); there L1's gradient is a sign
   that flips with any change, so L1 alone pins the net at the key (measured: a single batch,
   50 Adam steps, L1 did not move off the key's 0.0316; with squared error weighted 40 it fell to
   0.017). Squared error pulls hardest where the key is most wrong: soft edges and hair.
   **The loss sees the alpha the runtime delivers** (:func:`bounded`): the runtime clips the net's
   alpha to [0, 1] (:func:`~plateforge_server.tools.matte.guide.merge`), so where the truth is 1 (0)
   an output above (below) it is exactly right once delivered, and costs nothing. Without that, the
   net had to reproduce ``1 - key`` to the pixel wherever a subject as bright as the set left holes
   in the key's solid core (a residual as busy as the key's holes; on tune shot 104 it left rings
   at every hole's edge), where now it only has to push the alpha up inside the subject and down
   on the set. Validation scores the clipped alpha too (:func:`delivered`), so model selection
   compares what the runtime would give.
5. **Validation** (model selection picks the checkpoint, the classical key included, that does
   best on it): the middle keyframe with an edge, held out, when the run has more than
   ``min_keyframes``; else a window around the edge of the last keyframe (a training frame; the
   card says which).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import cv2
import numpy as np
import torch

from plateforge.errors import ManifestError
from plateforge.exr import StrPath
from plateforge.manifest_format import Manifest, SourceFile, check_for_training, load_manifest, pairs
from plateforge_server.tools.matte.guide import KEY_CHANNEL, LIGHT_CHANNELS, band_of, matte_planes
from plateforge_server.training.config import MATTE_LOSS_SETTINGS, TrainConfig
from plateforge_server.training.data import (
    RGB,
    Batch,
    TrainFrame,
    TrainingData,
    check_same_size,
    encode_planes,
    focus_window,
    input_colour,
    read_planes,
)

__all__ = ["ENCODED_ONE", "LOSS_SETTINGS", "bounded", "delivered", "load_matte_data"]

#: TrainConfig loss fields a "matte" run starts from (see the module doc, step 4; applied to every
#: run's config by :func:`~plateforge_server.training.config.with_mode_defaults`).
LOSS_SETTINGS: Final[Mapping[str, float]] = MATTE_LOSS_SETTINGS

#: Pixels the edge region (where crops centre) is grown by.
_EDGE_GROW = 6
#: Alpha 1 encoded (:func:`~plateforge_server.nets.unet.encode`: ``log1p``); encoded alpha 0 is 0.
ENCODED_ONE: Final = math.log(2.0)
#: Encoded targets this close to a bound count as at it (the target went through float32 and half).
_AT_BOUND = 1e-4


def bounded(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``output`` (encoded alpha, ``(N, 1, H, W)``) for the loss against ``target``: the target
    itself where the runtime's clip to [0, 1] would make the output exact (target at 1 and output
    above it, target at 0 and output below it), so those pixels cost nothing and give no gradient;
    everywhere else the output (a wrong alpha pulled back from beyond a bound included)."""
    over = (target >= ENCODED_ONE - _AT_BOUND) & (output > target)
    under = (target <= _AT_BOUND) & (output < target)
    return torch.where(over | under, target.to(output.dtype), output)


def delivered(output: torch.Tensor) -> torch.Tensor:
    """Encoded alpha clipped to [0, 1], as the runtime delivers it."""
    return output.clamp(0.0, ENCODED_ONE)


def load_matte_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then build the ``"matte"`` samples (see the module doc)."""
    manifest = load_manifest(manifest_path)
    licensed = check_for_training(manifest)
    colour = input_colour(config)
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
        planes = {
            role: read_planes(item, RGB if role != "matte" else None, colour) for role, item in pair.files.items()
        }
        check_same_size(pair.files, planes)
        plate = np.ascontiguousarray(planes["plate"].transpose(1, 2, 0))
        clean = np.ascontiguousarray(planes["clean_plate"].transpose(1, 2, 0))
        alpha = np.clip(planes["matte"][0], 0.0, 1.0).astype(np.float32)
        if alpha.min() >= 1.0 or alpha.max() <= 0.0:
            flat.append(pair.frame)
        guide = matte_planes(plate, clean)
        band = band_of(guide)
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
    return _hold_out(config, manifest.name, frames, set(flat), tuple(used))


def _hold_out(
    config: TrainConfig, name: str, frames: list[TrainFrame], flat: set[int], used: tuple[SourceFile, ...]
) -> TrainingData:
    """Hold the middle keyframe with an edge out for validation (model selection picks the
    checkpoint that does best on it, the classical key included) when the run has one more than
    ``min_keyframes``; otherwise validate on a window of the last keyframe, trained on too."""
    edged = sorted((f for f in frames if f.number not in flat), key=lambda f: f.number)
    if len(edged) > config.min_keyframes:
        held = edged[len(edged) // 2]
        training = tuple(f for f in frames if f is not held)
        note = f"held-out keyframe {held.number}"
        return TrainingData(config.mode, name, training, _validation(config, held), True, used, note)
    last = frames[-1]
    note = f"keyframe {last.number}, also trained on (too few keyframes to hold one out)"
    return TrainingData(config.mode, name, tuple(frames), _validation(config, last), False, used, note)


def _edge(alpha: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Where the matte or the key is between 0 and 1, or they disagree, grown by :data:`_EDGE_GROW`."""
    soft = ((alpha > 0) & (alpha < 1)) | ((key > 0) & (key < 1)) | (np.abs(alpha - key) > 0.05)
    side = 2 * _EDGE_GROW + 1
    grown: np.ndarray = cv2.dilate(soft.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    return grown


def _validation(config: TrainConfig, frame: TrainFrame) -> Batch:
    """A window of at most ``validation_size`` a side centred on the frame's edge (or its middle)."""
    return focus_window(config, frame)
