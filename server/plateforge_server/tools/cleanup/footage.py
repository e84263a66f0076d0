"""Real-footage cleanup cases: real photographs filmed by a known moving camera, with parallax.

The synthetic shot (:func:`plateforge.shots.synthetic.make_shot`) is analytic and its set is flat: one
global camera transform explains every pixel. These cases put *real* photographs (the OpenEXR
project's test photographs in the shared test data) in front of a moving camera on two layers:

* a **background**: one photograph, filling the frame, panned, zoomed and rotated slightly;
* a **foreground**: a soft-edged cut-out of the other photograph, on a nearer plane, so it moves
  :data:`PARALLAX` times as fast as the background and slides across it (the background behind
  its edges is revealed and covered frame by frame, which no global transform explains);
* a **rig** over both: a thin dark wire across the frame, swaying against the pan, and a second
  thin wire locked to the background (like a stay wire on the set: what it hides no frame shows,
  so only spatial inpainting can fill it).

Every frame is rendered from the photographs directly (bicubic, one resampling per layer per
frame), so the clean frames are the exact ground truth for the plates: they differ only where the
rig covers them. The mask is the rig grown by :data:`~plateforge.shots.synthetic.MASK_GROW` pixels with
a soft edge of :data:`~plateforge.shots.synthetic.MASK_SOFTNESS`, as in the synthetic shot. The result is
a :class:`~plateforge.shots.synthetic.Shot`, so :class:`~plateforge_server.tools.cleanup.evaluation.CleanupScene`
and the bench score it unchanged (``cameras`` are the background layer's; ``Shot.revealed`` holds
for background pixels only).

Which photograph is the background alternates with the seed (even: the flower, odd: the garden);
the seed also draws the camera path, the foreground's place and path, and the wires. Tune on
:data:`TUNE_SEEDS`, report on :data:`REPORT_SEEDS` (the same rule as the synthetic shots).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from plateforge.exr import read_exr
from plateforge.frames import Box, Frame
from plateforge.shots.synthetic import COLOUR_SPACE, MASK_GROW, MASK_SOFTNESS, Shot

__all__ = ["PARALLAX", "PHOTOS", "REPORT_SEEDS", "TUNE_SEEDS", "load_photo", "make_footage_shot"]

#: The photographs, relative to the ``openexr-images`` test-data folder.
PHOTOS = ("Chromaticities/Rec709_YC.exr", "LuminanceChroma/Garden.exr")
TUNE_SEEDS = (100, 101)
REPORT_SEEDS = (0, 1)
#: How much faster than the background the foreground layer moves across the frame.
PARALLAX = 1.8
_F32 = np.float32
_LUMA = (0.2126, 0.7152, 0.0722)


def load_photo(path: str | Path) -> np.ndarray:
    """A photograph as ``(H, W, 3)`` float32 scene-linear RGB, exposed so its median luminance is 0.18.

    Reads R, G, B, or luminance/chroma (``Y`` with subsampled ``RY``, ``BY``, OpenEXR's
    convention ``RY = (R - Y) / Y``), or ``Y`` alone (grey).
    """
    frame = read_exr(str(path))
    channels = frame.channels
    if all(name in channels for name in ("R", "G", "B")):
        rgb = frame.stack(("R", "G", "B")).astype(_F32)
    elif "Y" in channels:
        y = np.nan_to_num(channels["Y"].astype(_F32))
        if "RY" in channels and "BY" in channels:
            size = (y.shape[1], y.shape[0])
            ry = cv2.resize(channels["RY"].astype(_F32), size, interpolation=cv2.INTER_LINEAR)
            by = cv2.resize(channels["BY"].astype(_F32), size, interpolation=cv2.INTER_LINEAR)
            r, b = (ry + 1) * y, (by + 1) * y
            g = (y - _LUMA[0] * r - _LUMA[2] * b) / _LUMA[1]
            rgb = np.stack([r, g, b], axis=2)
        else:
            rgb = np.repeat(y[:, :, None], 3, axis=2)
    else:
        raise ValueError(f"{path}: expected R, G, B or Y (luminance/chroma) channels, found {sorted(channels)}")
    rgb = np.maximum(np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0), 0.0).astype(_F32)
    luma = rgb @ np.array(_LUMA, _F32)
    # Exposed like a plate: the median at 0.18, unless that puts the brightest 0.1 % above 4.
    median, top = float(np.median(luma)), float(np.percentile(luma, 99.9))
    gain = min(0.18 / max(median, 1e-6), 4.0 / max(top, 1e-6))
    exposed: np.ndarray = (rgb * _F32(gain)).astype(_F32)
    return exposed


def _view(cx: float, cy: float, scale: float, angle: float, width: int, height: int) -> np.ndarray:
    """The 2x3 affine from output pixel to source pixel: the output's centre at ``(cx, cy)``."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    ox, oy = (width - 1) / 2.0, (height - 1) / 2.0
    return np.array([[c, -s, cx - c * ox + s * oy], [s, c, cy - s * ox - c * oy]])


def _low_pass(photo: np.ndarray, scale: float) -> np.ndarray:
    """``photo`` blurred for sampling every ``scale`` pixels (a Gaussian of 0.5 output pixels)."""
    sigma = 0.5 * max(scale, 1.0)
    blurred: np.ndarray = cv2.GaussianBlur(photo, (0, 0), sigma)
    return blurred


def _render(source: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    out: np.ndarray = cv2.warpAffine(source, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT)
    return out


def _cutout(photo: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A soft-edged elliptical cut-out of ``photo``: ``(h, w, 4)`` RGBA, premultiplied."""
    ph, pw = photo.shape[:2]
    w, h = int(0.32 * width), int(0.42 * height)
    x0 = int(rng.integers(0, max(1, pw - w)))
    y0 = int(rng.integers(0, max(1, ph - h)))
    crop = photo[y0 : y0 + h, x0 : x0 + w]
    ys, xs = np.mgrid[0:h, 0:w].astype(_F32)
    radius = np.hypot((xs - (w - 1) / 2) / (w / 2), (ys - (h - 1) / 2) / (h / 2))
    alpha = np.clip((1.0 - radius) * 12.0, 0.0, 1.0).astype(_F32)  # about a 2-pixel soft edge
    return np.concatenate([crop * alpha[:, :, None], alpha[:, :, None]], axis=2).astype(_F32)


def _line_distance(px: np.ndarray, py: np.ndarray, x: float, y: float, angle: float) -> np.ndarray:
    """Distance to the infinite line through ``(x, y)`` at ``angle`` from vertical."""
    distance: np.ndarray = np.abs((px - _F32(x)) * _F32(math.cos(angle)) - (py - _F32(y)) * _F32(math.sin(angle)))
    return distance


def _plate_frame(rgb: np.ndarray, window: Box, number: int) -> Frame:
    half = rgb.astype(np.float16)
    channels = {name: np.ascontiguousarray(half[:, :, k]) for k, name in enumerate(("R", "G", "B"))}
    channels["A"] = np.ones(rgb.shape[:2], np.float16)
    return Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE)


def make_footage_shot(
    testdata: str | Path, *, seed: int, width: int = 480, height: int = 270, frames: int = 24, first_frame: int = 1001
) -> Shot:
    """Render a real-footage case from the photographs under ``testdata`` (the ``openexr-images`` folder)."""
    if width < 32 or height < 32 or frames < 1:
        raise ValueError(f"make_footage_shot needs at least 32x32 pixels and one frame, got {width}x{height}x{frames}")
    root = Path(testdata)
    photos = [load_photo(root / name) for name in PHOTOS]
    background, other = photos[seed % 2], photos[1 - seed % 2]
    rng = np.random.default_rng(seed)
    bh, bw = background.shape[:2]
    # Source pixels per output pixel: the view covers about 70 % of the photo's width.
    scale = 0.7 * bw / width
    # A camera's optical low-pass: without it the photographs' finest detail aliases differently
    # in every frame, and no frame could predict another's pixels the way real footage does.
    background = _low_pass(background, scale)
    other = _low_pass(other, 0.7 * other.shape[1] / width)
    room_x = bw - scale * width * 1.05
    room_y = max(bh - scale * height * 1.05, 0.0)
    pan = room_x * float(rng.uniform(0.55, 0.8)) / max(frames - 1, 1)  # source pixels a frame
    direction = 1.0 if rng.random() < 0.5 else -1.0
    phases = rng.uniform(0, 2 * math.pi, 6)
    start_x = bw / 2 - direction * pan * (frames - 1) / 2
    cutout = _cutout(other, rng, width, height)
    fh, fw = cutout.shape[:2]
    # The foreground starts so that it crosses the middle of the frame over the shot.
    travel = pan * (frames - 1) / scale * PARALLAX
    fg_start = (
        width / 2 + direction * travel / 2 + float(rng.uniform(-0.1, 0.1)) * width,
        float(rng.uniform(0.35, 0.65)) * height,
    )
    stay = (float(rng.uniform(0.3, 0.7)) * bw, float(rng.uniform(0.3, 0.7)) * bh, float(rng.uniform(0.6, 1.0)))

    window = Box.from_size(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(_F32)
    shot = Shot(plates=[], cleans=[], masks=[], first_frame=first_frame, seed=seed)
    for i in range(frames):
        cx = start_x + direction * pan * i + 1.5 * math.sin(0.9 * i + phases[0])
        cy = bh / 2 + 0.25 * room_y * math.sin(0.2 * i + phases[1])
        zoom = scale * (1.0 + 0.01 * math.sin(0.15 * i + phases[2]))
        angle = 0.006 * math.sin(0.3 * i + phases[3])
        view = _view(cx, cy, zoom, angle, width, height)
        clean = _render(background, view, width, height)
        # The foreground: its screen position moves PARALLAX times as fast as the background's.
        shift = -(cx - start_x) / scale * PARALLAX
        fx = fg_start[0] + shift + 2.0 * math.sin(0.7 * i + phases[4])
        fy = fg_start[1] + 0.5 * (cy - bh / 2) / scale * PARALLAX
        place = np.array([[1.0, 0.0, (fw - 1) / 2 - fx], [0.0, 1.0, (fh - 1) / 2 - fy]])
        layer = cv2.warpAffine(
            cutout, place, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
        )
        alpha = np.clip(layer[:, :, 3:4], 0.0, 1.0)
        clean = (np.maximum(layer[:, :, :3], 0.0) + clean * (1.0 - alpha)).astype(_F32)

        # The swaying wire (against the pan) and the stay wire locked to the background.
        wx = (0.5 + 0.2 * direction) * width - direction * 2.0 * i + 3.0 * math.sin(0.5 * i + phases[5])
        swing = 0.18 + 0.05 * math.sin(0.3 * i + phases[5])
        sway = _line_distance(xs, ys, wx, height / 2, swing) - _F32(0.7)
        inverse = cv2.invertAffineTransform(view)
        sx, sy = inverse @ np.array([stay[0], stay[1], 1.0])
        along = np.abs(
            (xs - _F32(sx)) * _F32(math.sin(stay[2] + angle)) + (ys - _F32(sy)) * _F32(math.cos(stay[2] + angle))
        )
        beyond = np.maximum(along - _F32(0.2 * height), 0.0)  # a segment 0.4 of the frame's height long
        stay_wire = np.hypot(_line_distance(xs, ys, float(sx), float(sy), stay[2] + angle), beyond) - _F32(0.6)
        plate = clean.copy()
        for distance, colour in ((stay_wire, (0.03, 0.03, 0.028)), (sway, (0.012, 0.011, 0.010))):
            cover = np.clip(0.5 - distance, 0.0, 1.0)[:, :, None]
            plate = plate + (np.array(colour, _F32) - plate) * cover
        nearest = np.minimum(sway, stay_wire)
        mask = np.clip((_F32(MASK_GROW + MASK_SOFTNESS) - nearest) / _F32(MASK_SOFTNESS), 0.0, 1.0).astype(_F32)

        number = first_frame + i
        plate_frame = _plate_frame(plate.astype(_F32), window, number)
        clean_frame = _plate_frame(clean, window, number)
        # The plate differs from the clean frame only where the rig covers it, bit for bit.
        untouched = mask <= 0
        for name in ("R", "G", "B"):
            plate_frame.channels[name][untouched] = clean_frame.channels[name][untouched]
        shot.plates.append(plate_frame)
        shot.cleans.append(clean_frame)
        shot.masks.append(Frame({"A": mask}, window, window, frame_number=number))
        shot.cameras.append(np.asarray(view, np.float64))
    return shot
