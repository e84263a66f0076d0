"""Training samples for the learned cleanup (``"cleanup"`` mode): the shot teaches itself.

A shot's rig hides the truth under its mask, but everywhere else the plate *is* the truth. So
holes shaped like rigs (wires, bars, markers: :func:`rig_holes`) are cut where the shot's mask is
clear, the classical cleanup fills them exactly as it would fill a real rig, and the net learns
to turn that fill into the plate it removed. Read top to bottom:

1. **Licence first**, as in every mode: :func:`~plateforge_server.datasets.check_for_training`
   before any frame is opened. The manifest gives ``plate`` frames and (optional) ``mask``
   frames, paired by frame number; a sequence, so neighbours exist.
2. **Alignment once per frame**: each frame's neighbours within ``temporal_radius`` are aligned to
   it with the classical tool's own estimate
   (:func:`~plateforge_server.tools.cleanup.classical.align_neighbours`), using the shot's masks.
   The camera does not care where the holes are, so every hole pattern of the frame reuses it.
3. **Holes.** ``holes_per_frame`` patterns a frame, from a generator seeded by the config. A
   ``roto_holes`` share are the frame's own roto moved to where it is clear (:func:`roto_copy`):
   the user's rig itself, its shape, thickness, orientation and soft edge, and, with every
   neighbour's roto moved by the same offset, its motion across the frames (a swaying wire keeps
   swaying, a world-locked tape cross stays world-locked), so the classical fill shows exactly
   what it would show for a real rig of that kind and the gate channel is the one the net meets
   at inference. The rest (all of them on a shot without a roto) are generic: a
   ``marker_holes`` share of thin markers (:func:`marker_holes`: tape crosses, strips, small
   boxes) stuck on the set, cut world-locked in every neighbour too (carried by the camera move),
   so no frame shows them and only the spatial inpainting fills them; the others rig-sized
   (:func:`rig_holes`), half cut in the frame alone (neighbours show what they hide: the temporal
   fill is tested), half at the same place in every neighbour, like a rig that moves with the
   camera. With ``soft_holes`` every generic hole gets a soft roto edge (:func:`soft_edges`). The
   classical fill then treats ``shot mask | holes`` as its mask, as it would a real roto.
4. **Samples.** Per pattern, a :class:`~plateforge_server.training.data.TrainFrame` holding the
   encoded :func:`~plateforge_server.tools.cleanup.guide.guide_planes`, the encoded plate as target and,
   as loss weight, the holes where the shot's mask is clear (under the real rig the truth is
   unknown). Crops centre on the holes (``focus``); exposure jitter scales the light planes only.
5. **Artist-fixed keyframes** (optional): a ``target`` file for a frame is the artist's paint-out
   of that frame. It adds a sample of the real task: the real mask classically filled, the fix
   as target, the loss under the mask (weighted by it), repeated as often as a frame's hole
   patterns, so a few fixed frames teach what the shot's rig hides and the holes cannot.
6. **Validation** (model selection keeps the checkpoint, the classical fill included, that does
   best on it): :data:`VALIDATION_FRAMES` frames spread through the shot are held out
   (:func:`held_out_frames`; inner frames, with neighbours on both sides as most frames have),
   and the user's own mask is copied onto each (:data:`VALIDATION_COPIES` times, moved to where
   the roto is clear, its neighbours' rotos moved alike), each copy classically filled as a real
   rig would be. The net is scored on the truth under those copies: the case it will meet, shaped
   like it. Measured on tune shots (bench/tune_cleanup.py), the previous proxy (the *last* frame
   alone: neighbours on one side only, so far more of the copy was unseen than on a typical frame,
   and one frame's content) and training on generic holes gave a proxy that did not predict the
   real mask (correlation of the margins over checkpoints -0.11 and 0.35 on seeds 100, 101). A
   shot without a roto falls back to each held-out frame's first random hole pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from plateforge.errors import ManifestError
from plateforge.exr import StrPath
from plateforge.manifest_format import Manifest, SourceFile, check_for_training, load_manifest, pairs
from plateforge_server.tools.cleanup.classical import Neighbour, align_neighbours, fill_plate
from plateforge_server.tools.cleanup.guide import guide_planes
from plateforge_server.tools.inpaint.examples import random_holes
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import (
    RGB,
    Batch,
    TrainFrame,
    TrainingData,
    check_same_size,
    encode_planes,
    focus_window,
    input_colour,
    join_batches,
    read_planes,
    validation_window,
)

__all__ = ["LIGHT_CHANNELS", "load_guided_data", "marker_holes", "rig_holes", "soft_edges"]

#: Guide planes that hold light: the zeroed plate and the classical composite (the rest are masks).
LIGHT_CHANNELS = 6


def rig_holes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ``(H, W)`` float32 hole mask in {0, 1}: one to three patches of :func:`random_holes`
    (boxes and brush strokes), each drawn in a square of 48 to 160 pixels placed anywhere, so
    holes are rig-sized whatever the frame size."""
    hole = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        side = min(int(rng.integers(48, 161)), height, width)
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        patch = random_holes(rng, side, side)
        hole[top : top + side, left : left + side] = np.maximum(hole[top : top + side, left : left + side], patch)
    return hole


def marker_holes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ``(H, W)`` float32 hole mask in {0, 1}: one to three thin, marker-sized shapes (tape
    crosses, short strips of tape or wire, small boxes), the rig no neighbouring frame shows when
    it is stuck on the set: what the classical fill leaves to spatial inpainting."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + np.float32(0.5)
    distance = np.full((height, width), np.inf, np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        angle = float(rng.uniform(0, math.pi))
        kind = int(rng.integers(0, 3))
        if kind == 0:  # a cross of two strips
            length, half = float(rng.uniform(4.0, 12.0)), float(rng.uniform(0.8, 2.5))
            shape = np.minimum(
                _box_distance(xs, ys, cx, cy, length, half, angle),
                _box_distance(xs, ys, cx, cy, length, half, angle + math.pi / 2),
            )
        elif kind == 1:  # a strip
            shape = _box_distance(xs, ys, cx, cy, float(rng.uniform(8.0, 40.0)), float(rng.uniform(0.8, 4.0)), angle)
        else:  # a small box
            shape = _box_distance(xs, ys, cx, cy, float(rng.uniform(2.0, 8.0)), float(rng.uniform(2.0, 8.0)), angle)
        np.minimum(distance, shape, out=distance)
    return (distance <= 0).astype(np.float32)


def soft_edges(rng: np.random.Generator, hole: np.ndarray) -> np.ndarray:
    """``hole`` (binary) as an artist's roto draws it: 1 over the hole grown by 0 to 3 pixels, then
    falling to 0 over a further 1 to 3, so training sees the soft edges the real masks have."""
    grow, softness = float(rng.uniform(0.0, 3.0)), float(rng.uniform(1.0, 3.0))
    outside = (hole <= 0).astype(np.uint8)
    distance = np.full(hole.shape, np.inf, np.float32)
    if not outside.all():
        distance = np.asarray(cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), np.float32)
    soft: np.ndarray = np.clip((grow + softness - distance) / softness, 0.0, 1.0).astype(np.float32)
    return soft


def _box_distance(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    """Signed distance to a box of half-sides ``a``, ``b`` turned by ``angle`` (negative inside)."""
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = xs - np.float32(cx), ys - np.float32(cy)
    qx = np.abs(dx * np.float32(ca) + dy * np.float32(sa)) - np.float32(a)
    qy = np.abs(-dx * np.float32(sa) + dy * np.float32(ca)) - np.float32(b)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return np.asarray(outside + np.minimum(np.maximum(qx, qy), 0), np.float32)


def load_guided_data(config: TrainConfig, manifest_path: StrPath | Manifest) -> TrainingData:
    """Check the manifest's licences, then build the ``"cleanup"`` samples (see the module doc)."""
    manifest = load_manifest(manifest_path)
    licensed = check_for_training(manifest)
    colour = input_colour(config)
    grouped = pairs(licensed, roles=("plate",), optional=("mask", "target"))
    if not grouped:
        raise ManifestError(f"manifest '{manifest.path}' has no files with role 'plate' to train 'cleanup' on")
    numbers: list[int] = []
    plates: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    fixes: dict[int, np.ndarray] = {}
    used: list[SourceFile] = []
    for pair in grouped:
        planes = {role: read_planes(item, RGB if role != "mask" else None, colour) for role, item in pair.files.items()}
        check_same_size(pair.files, planes)
        rgb = np.ascontiguousarray(planes["plate"].transpose(1, 2, 0))
        numbers.append(pair.frame)
        plates.append(rgb)
        masks.append(np.clip(planes["mask"][0], 0.0, 1.0) if "mask" in planes else np.zeros(rgb.shape[:2], np.float32))
        if "target" in planes:
            if "mask" not in planes:
                raise ManifestError(
                    f"'{pair.files['target'].name}' is an artist fix of frame {pair.frame}, which has no mask to say "
                    "where the fix is"
                )
            fixes[len(numbers) - 1] = np.ascontiguousarray(planes["target"].transpose(1, 2, 0))
        used.extend(pair.files.values())
    sizes = {p.shape[:2] for p in plates}
    if len(sizes) > 1:
        raise ManifestError(f"manifest '{manifest.path}': the plates differ in size ({sorted(sizes)}); one shot a run")

    rng = np.random.default_rng([config.seed, 3])
    held = held_out_frames(len(numbers))
    training: list[TrainFrame] = []
    windows: list[Batch] = []
    copied: list[int] = []  # held-out frames validated on copies of their roto
    for k, number in enumerate(numbers):
        neighbours = [(plates[j], masks[j]) for j in _near(numbers, k, config.temporal_radius)]
        matrices = align_neighbours(plates[k], masks[k], neighbours)
        if k in held:
            shaped = _mask_shaped(config, plates[k], masks[k], neighbours, matrices, number)
            if shaped is not None:
                windows.append(shaped)
                copied.append(number)
                continue
        frame_samples = [
            _sample(rng, number, plates[k], masks[k], neighbours, matrices, config)
            for _ in range(config.holes_per_frame)
        ]
        if k in held:  # no roto to copy: the first of its random patterns with holes inside the window
            candidates = [validation_window(config, sample) for sample in frame_samples]
            windows.append(next((w for w in candidates if float(w.weight.sum()) > 0), candidates[0]))
            continue
        if k in fixes:
            fixed = _fixed(number, plates[k], masks[k], fixes[k], neighbours, matrices)
            frame_samples += [fixed] * config.holes_per_frame
        training.extend(frame_samples)
    if held:
        listed = ", ".join(str(numbers[k]) for k in held)
        note = f"held-out frames {listed}"
        if copied:
            copies = len(copied) * VALIDATION_COPIES
            note += f": {copies} copies of the masks of {len(copied)} moved to where the roto is clear"
        return TrainingData(config.mode, manifest.name, tuple(training), join_batches(windows), True, tuple(used), note)
    # One frame: hold out its first pattern (a smoke check, said so in the card).
    if config.holes_per_frame < 2:
        raise ManifestError(
            f"manifest '{manifest.path}' has one plate frame; train 'cleanup' on a sequence, or set "
            "holes_per_frame >= 2 so one pattern can be held out"
        )
    validation = validation_window(config, training[0])
    return TrainingData(config.mode, manifest.name, tuple(training[1:]), validation, False, tuple(used))


#: Frames a sequence holds out for validation, spread through it (at most a quarter of its frames).
VALIDATION_FRAMES = 3


def held_out_frames(count: int) -> list[int]:
    """Indices of the frames a ``count``-frame sequence holds out for validation: up to
    :data:`VALIDATION_FRAMES` (at most a quarter of the frames, at least one), at the middles of
    equal stretches of the shot, so they have neighbours on both sides as most frames do (the
    last frame alone has half the neighbours, so more of a rig there is unseen) and the proxy
    averages over the shot's changing content. None for a single frame."""
    if count < 2:
        return []
    wanted = max(1, min(VALIDATION_FRAMES, count // 4))
    return sorted({min(count - 1, int((i + 0.5) * count / wanted)) for i in range(wanted)})


def _near(numbers: Sequence[int], k: int, radius: int) -> list[int]:
    """Indices of frame ``k``'s neighbours within ``radius`` frame numbers, nearest first."""
    near = [j for j, n in enumerate(numbers) if j != k and abs(n - numbers[k]) <= radius]
    near.sort(key=lambda j: (abs(numbers[j] - numbers[k]), numbers[j]))
    return near


#: Copies of the shot's mask, moved to clear parts of the held-out frame, that validation scores.
VALIDATION_COPIES = 4
#: Candidate moves tried per copy; the ones whose copy overlaps the roto and leaves the frame least win.
_CANDIDATE_MOVES = 48


def _shifted(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved by whole pixels, zeros where it moved in from outside."""
    height, width = mask.shape
    out = np.zeros_like(mask)
    src_y, dst_y = slice(max(0, -dy), min(height, height - dy)), slice(max(0, dy), min(height, height + dy))
    src_x, dst_x = slice(max(0, -dx), min(width, width - dx)), slice(max(0, dx), min(width, width + dx))
    out[dst_y, dst_x] = mask[src_y, src_x]
    return out


def clear_moves(rng: np.random.Generator, mask: np.ndarray, count: int) -> list[tuple[int, int]]:
    """``count`` whole-pixel moves of ``mask`` to where the roto is clear, drawn from
    :data:`_CANDIDATE_MOVES` random ones: the ones whose moved copy overlaps the roto (grown by 3
    pixels) and leaves the frame least, in random order. Empty for an empty mask."""
    height, width = mask.shape
    area = float(mask.sum())
    if area < 1.0:
        return []
    grown = cv2.dilate((mask > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    scored = []
    for _ in range(_CANDIDATE_MOVES):
        dx, dy = int(rng.integers(-width // 2, width // 2 + 1)), int(rng.integers(-height // 2, height // 2 + 1))
        moved = _shifted(mask, dx, dy)
        scored.append((float(moved[grown].sum()) + area - float(moved.sum()), dx, dy))
    scored.sort()
    best = [(dx, dy) for _, dx, dy in scored[:count]]
    return [best[i] for i in rng.permutation(len(best))]


def roto_copy(
    rng: np.random.Generator, mask: np.ndarray, neighbour_masks: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The frame's roto ``mask`` moved to one of the quarter of candidate places where it is most
    clear of itself: ``(holes, moved neighbour masks)``. The holes are the moved roto where the
    real one is 0 (soft edges kept: they are the artist's); each neighbour's roto is moved by the
    same offset, so the copy keeps the rig's shape, thickness, orientation and motion (a
    world-locked marker stays world-locked, a swaying wire sways). None without a roto."""
    moves = clear_moves(rng, mask, _CANDIDATE_MOVES // 4)
    for dx, dy in moves:
        holes = _shifted(mask, dx, dy) * (mask <= 0)
        if float(holes.sum()) >= 1.0:
            return holes.astype(np.float32), [_shifted(m, dx, dy) for m in neighbour_masks]
    return None


def _mask_shaped(
    config: TrainConfig,
    rgb: np.ndarray,
    mask: np.ndarray,
    neighbours: Sequence[Neighbour],
    matrices: Sequence[np.ndarray | None],
    number: int,
) -> Batch | None:
    """Validation on holes shaped like the user's actual mask: the held-out frame's roto (and, moved
    the same way, its neighbours' rotos: the rig's shape, thickness and motion) moved to
    :data:`VALIDATION_COPIES` places where the roto is clear, each classically filled, the truth
    under it known. None when the frame has no roto to copy."""
    rng = np.random.default_rng([config.seed, 5, number])
    moves = clear_moves(rng, mask, VALIDATION_COPIES)
    if not moves:
        return None
    windows = []
    for dx, dy in moves:
        holes = _shifted(mask, dx, dy) * (mask <= 0)
        if float(holes.sum()) < 1.0:
            continue
        cut = [(n_rgb, np.maximum(n_mask, _shifted(n_mask, dx, dy))) for n_rgb, n_mask in neighbours]
        fill = fill_plate(rgb, np.maximum(mask, holes), cut, matrices)
        planes = guide_planes(rgb, np.maximum(mask, holes), fill.rgb, fill.shown).transpose(2, 0, 1)
        frame = TrainFrame(
            number=number,
            image=encode_planes(planes),
            target=encode_planes(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
            mask=holes.astype(np.float32),
            light_channels=LIGHT_CHANNELS,
            focus=np.flatnonzero(holes > 0),
        )
        windows.append(focus_window(config, frame))
    if not windows:
        return None
    return join_batches(windows)


def _fixed(
    number: int,
    rgb: np.ndarray,
    mask: np.ndarray,
    fix: np.ndarray,
    neighbours: Sequence[Neighbour],
    matrices: Sequence[np.ndarray | None],
) -> TrainFrame:
    """The real task on an artist-fixed frame: the shot's mask classically filled, the fix as target."""
    fill = fill_plate(rgb, mask, neighbours, matrices)
    planes = guide_planes(rgb, mask, fill.rgb, fill.shown).transpose(2, 0, 1)
    weight = mask.astype(np.float32)
    return TrainFrame(
        number=number,
        image=encode_planes(planes),
        target=encode_planes(np.ascontiguousarray(fix.transpose(2, 0, 1))),
        mask=weight,
        light_channels=LIGHT_CHANNELS,
        focus=np.flatnonzero(weight > 0),
    )


def _sample(
    rng: np.random.Generator,
    number: int,
    rgb: np.ndarray,
    mask: np.ndarray,
    neighbours: Sequence[Neighbour],
    matrices: Sequence[np.ndarray | None],
    config: TrainConfig,
) -> TrainFrame:
    """One hole pattern of one frame, classically filled, as a training sample."""
    height, width = mask.shape
    copy = roto_copy(rng, mask, [n_mask for _, n_mask in neighbours]) if rng.random() < config.roto_holes else None
    if copy is not None:
        # The user's own roto, moved: its neighbours' rotos moved alike, so the rig keeps its motion
        # and exactly the pixels a real rig of this shape leaves shown are shown (the gate channel).
        holes, moved = copy
        cut = [(n_rgb, np.maximum(n_mask, m)) for (n_rgb, n_mask), m in zip(neighbours, moved, strict=True)]
    else:
        marker = bool(rng.random() < config.marker_holes)
        shape = marker_holes(rng, height, width) if marker else rig_holes(rng, height, width)
        holes = (soft_edges(rng, shape) if config.soft_holes else shape) * (mask <= 0)
        # Markers are stuck on the set: every neighbour misses them too (world-locked). Other rigs are
        # cut in the frame alone or, half the time, at the same place in every neighbour.
        locked = marker or bool(rng.integers(0, 2))
        cut = [
            (n_rgb, np.maximum(n_mask, _into(holes, matrix, marker)) if locked and matrix is not None else n_mask)
            for (n_rgb, n_mask), matrix in zip(neighbours, matrices, strict=True)
        ]
    hidden = np.maximum(mask, holes)
    fill = fill_plate(rgb, hidden, cut, matrices)
    planes = guide_planes(rgb, hidden, fill.rgb, fill.shown).transpose(2, 0, 1)
    # Weights stay in [0, 1] (the SSIM term blends by them): shown pixels count 1 / unseen_weight.
    weight = (holes * (mask <= 0) * np.where(fill.shown, 1.0 / config.unseen_weight, 1.0)).astype(np.float32)
    return TrainFrame(
        number=number,
        image=encode_planes(planes),
        target=encode_planes(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
        mask=weight,
        light_channels=LIGHT_CHANNELS,
        focus=np.flatnonzero(weight > 0),
    )


def _into(holes: np.ndarray, matrix: np.ndarray, world: bool) -> np.ndarray:
    """The holes as a neighbour sees them: carried by the camera move ``matrix`` (target pixels ->
    neighbour pixels) when ``world`` (stuck on the set), at the same pixels otherwise."""
    if not world:
        return holes
    height, width = holes.shape
    moved = cv2.warpAffine(holes, matrix.astype(np.float64), (width, height), flags=cv2.INTER_LINEAR)
    return np.asarray(moved, np.float32)
