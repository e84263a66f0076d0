"""A synthetic "daily" with exact ground truth, for the demo and the tests.

:func:`make_shot` renders a short, deterministic (seeded) plate sequence with a rig to paint out,
the same frames without the rig (the exact clean plate), and an artist-style roto mask::

    shot = make_shot(seed=3)
    shot.plates[0], shot.cleans[0], shot.masks[0]   # Frames for frame shot.first_frame
    shot.frame(1005).plate                          # a frame by its number
    shot.revealed(1005, 2)                          # masked pixels frames 1003-1007 show

Everything is rendered analytically, per frame, as a function of continuous *world* coordinates
seen through a moving camera (pan with a little shake, slow rotation and zoom), so every frame of
the clean plate is exact: nothing is resampled from another frame, and a tool that aligns
neighbouring frames is measured against the truth, not against an interpolated copy of itself.

The set (background) is scene-linear, mostly 0.02..1.5, with multi-scale structure for alignment
and inpainting to get wrong: smooth-noise blobs (multi-octave value noise), oriented gratings at
several wavelengths under a noise envelope (fine texture in some places, smooth areas elsewhere),
hard-edged shapes (rotated boxes, some striped, discs and rings, anti-aliased) and a few small
practical lights that peak around 4.

The rig, which the mask covers, is:

* a thin dark wire crossing the whole frame, drifting and swaying against the camera's pan, so
  the set behind it is revealed one or two frames later;
* a grey bar with a chequered tracking marker, moving on its own path (against the pan), so
  frames within +/-2 reveal most of what it hides (when its wobble briefly follows the pan, the
  middle of the bar stays hidden for a few frames);
* a tape cross stuck on the set (world-locked, like a tracking marker): the set behind it is
  never visible in any frame of the shot, so only spatial inpainting can fill it.

With the defaults, frames within +/-2 show about 89 % of the masked pixels' background (80 % in
the worst frame); about 260 masked pixels a frame are never seen. :meth:`Shot.revealed`
gives, per frame, exactly which masked pixels other frames show, from the cameras.

Plates carry R, G, B, A as half (float16), like real dailies, plus a ``Z`` depth channel as float
(float32) that tools must pass through untouched. ``clean`` has the same channels with no rig;
it equals ``plate`` bit for bit wherever the mask is zero. ``mask`` has a single float ``A``
channel in [0, 1]: 1 over the rig dilated by :data:`MASK_GROW` pixels, falling to 0 over a further
:data:`MASK_SOFTNESS` pixels, like a roto with a soft edge. All frames share one data window,
``(0, 0)-(width-1, height-1)``, equal to the display window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from plateforge.frames import Box, Frame

__all__ = ["COLOUR_SPACE", "MASK_GROW", "MASK_SOFTNESS", "Shot", "ShotFrame", "make_shot", "write_shot"]

#: Pixels the mask extends fully (value 1) beyond the rig's edge.
MASK_GROW = 2.0
#: Pixels over which the mask then falls from 1 to 0.
MASK_SOFTNESS = 2.0

#: The colour-space label on plates and clean plates (scene-linear, Rec.709 primaries).
COLOUR_SPACE = "lin_rec709"

_F32 = np.float32
_LATTICE = 64  # value-noise lattice size; the noise is periodic over 64 cells


class ShotFrame(NamedTuple):
    """One frame of a :class:`Shot`."""

    plate: Frame
    clean: Frame
    mask: Frame


@dataclass
class Shot:
    """A rendered synthetic shot: per frame the plate, the exact clean plate and the roto mask."""

    plates: list[Frame]
    cleans: list[Frame]
    masks: list[Frame]
    first_frame: int
    seed: int
    #: Per frame, the 2x3 affine matrix taking pixel-centre coordinates (x + 0.5, y + 0.5) to world.
    cameras: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.plates)

    @property
    def frame_numbers(self) -> list[int]:
        return [self.first_frame + i for i in range(len(self.plates))]

    @property
    def width(self) -> int:
        return self.plates[0].width

    @property
    def height(self) -> int:
        return self.plates[0].height

    def index(self, frame_number: int) -> int:
        i = frame_number - self.first_frame
        if not 0 <= i < len(self.plates):
            raise IndexError(
                f"frame {frame_number} is outside the shot {self.first_frame}-{self.first_frame + len(self) - 1}"
            )
        return i

    def frame(self, frame_number: int) -> ShotFrame:
        i = self.index(frame_number)
        return ShotFrame(self.plates[i], self.cleans[i], self.masks[i])

    def revealed(self, frame_number: int, radius: int | None = None) -> np.ndarray:
        """Ground truth for temporal fills: which pixels under ``frame_number``'s mask another frame shows.

        An ``(H, W)`` bool array, True where the set point behind a masked pixel falls, in some other
        frame within ``radius`` frames (``None``: any frame of the shot), inside the image on a pixel
        whose mask is 0. Computed from the exact cameras, not from the images.
        """
        t = self.index(frame_number)
        mask = self.masks[t].channels["A"]
        ys, xs = np.nonzero(mask > 0)
        world = self.cameras[t] @ np.stack([xs + 0.5, ys + 0.5, np.ones(len(xs))])
        shown = np.zeros(len(xs), bool)
        for n in range(len(self)):
            if n == t or (radius is not None and abs(n - t) > radius):
                continue
            to_pixels = np.linalg.inv(np.vstack([self.cameras[n], [0.0, 0.0, 1.0]]))[:2]
            at = to_pixels @ np.vstack([world, np.ones(len(xs))])
            qx, qy = np.floor(at[0]).astype(np.int64), np.floor(at[1]).astype(np.int64)
            inside = (qx >= 0) & (qx < self.width) & (qy >= 0) & (qy < self.height)
            clear = np.zeros(len(xs), bool)
            clear[inside] = self.masks[n].channels["A"][qy[inside], qx[inside]] == 0
            shown |= clear
        result = np.zeros(mask.shape, bool)
        result[ys[shown], xs[shown]] = True
        return result


# -- scene description ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    kind: str  # "box", "disc" or "ring"
    cx: float
    cy: float
    a: float  # box half-width / disc radius / ring radius
    b: float  # box half-height / ring half-thickness
    angle: float
    colour: tuple[float, float, float]
    depth: float
    stripes: float  # stripe period in px inside a box; 0: flat


@dataclass(frozen=True)
class _Light:
    cx: float
    cy: float
    sigma: float
    peak: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class _Scene:
    lattices: tuple[np.ndarray, ...]
    gratings: tuple[tuple[float, float, float, float], ...]  # (kx, ky, phase, amplitude)
    shapes: tuple[_Shape, ...]
    lights: tuple[_Light, ...]
    tape: tuple[float, float, float]  # world-locked tape cross: (x, y, angle)
    phases: tuple[float, ...]  # per-shot phases of the rig and camera motion


def _scene(rng: np.random.Generator, width: int, height: int, frames: int) -> _Scene:
    lattices = tuple(rng.uniform(-1.0, 1.0, (_LATTICE, _LATTICE)).astype(_F32) for _ in range(3))
    gratings = []
    for wavelength, amplitude in ((5.5, 0.55), (9.0, 0.7), (17.0, 0.8), (33.0, 0.6)):
        theta = rng.uniform(0, math.pi)
        k = 2 * math.pi / (wavelength * rng.uniform(0.9, 1.1))
        gratings.append((k * math.cos(theta), k * math.sin(theta), rng.uniform(0, 2 * math.pi), amplitude))
    # The camera pans right by ~3 px a frame: spread the set over what the shot will see.
    x0, x1 = -0.15 * width, width * 1.15 + 3.5 * frames
    y0, y1 = -0.2 * height, 1.1 * height + 1.0 * frames
    shapes = []
    n_shapes = max(6, int(24 * (x1 - x0) * (y1 - y0) / (600.0 * 350.0)))
    for _ in range(n_shapes):
        kind = str(rng.choice(["box", "box", "box", "disc", "ring"]))
        size = float(np.exp(rng.uniform(math.log(6), math.log(38))))
        grey = float(np.exp(rng.uniform(math.log(0.03), math.log(1.2))))
        tint = rng.uniform(0.75, 1.25, 3)
        colour = tuple(float(grey * t) for t in tint)
        shapes.append(
            _Shape(
                kind=kind,
                cx=float(rng.uniform(x0, x1)),
                cy=float(rng.uniform(y0, y1)),
                a=size,
                b=size * float(rng.uniform(0.25, 1.0)) if kind == "box" else float(rng.uniform(1.0, 3.0)),
                angle=float(rng.uniform(0, math.pi)),
                colour=(colour[0], colour[1], colour[2]),
                depth=float(rng.uniform(5.0, 9.0)),
                stripes=float(rng.uniform(4.0, 9.0)) if kind == "box" and rng.uniform() < 0.35 else 0.0,
            )
        )
    lights = tuple(
        _Light(
            cx=float(rng.uniform(x0, x1)),
            cy=float(rng.uniform(y0, 0.6 * y1)),
            sigma=float(rng.uniform(1.2, 2.5)),
            peak=float(rng.uniform(2.5, 4.0)),
            colour=(1.0, float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.55, 0.75))),
        )
        for _ in range(4)
    )
    # The tape cross sits on the set where the camera sees it for the whole shot, clear of the wire.
    tape = (
        float(0.86 * width + rng.uniform(-8, 8)),
        float(0.22 * height + rng.uniform(-8, 8)),
        float(rng.uniform(0, 1)),
    )
    phases = tuple(float(p) for p in rng.uniform(0, 2 * math.pi, 8))
    return _Scene(lattices, tuple(gratings), tuple(shapes), lights, tape, phases)


def _camera(i: int, width: int, height: int, phases: tuple[float, ...]) -> np.ndarray:
    """2x3 matrix: pixel-centre coordinates of frame index ``i`` -> world coordinates."""
    tx = 3.1 * i + 1.2 * math.sin(0.9 * i + phases[0])
    ty = -0.8 * i + 0.7 * math.sin(1.3 * i + phases[1])
    theta = 0.0016 * i
    scale = 1.0 + 0.0012 * i
    c, s = scale * math.cos(theta), scale * math.sin(theta)
    cx, cy = width / 2.0, height / 2.0
    # world = centre + T + scale * R(theta) (p - centre)
    return np.array(
        [[c, -s, cx + tx - c * cx + s * cy], [s, c, cy + ty - s * cx - c * cy]],
        dtype=np.float64,
    )


# -- rendering helpers ---------------------------------------------------------------------------


def _value_noise(u: np.ndarray, v: np.ndarray, lattice: np.ndarray, scale: float, octaves: int) -> np.ndarray:
    """Multi-octave value noise (quintic interpolation of a periodic random lattice), about [-1, 1]."""
    flat = lattice.ravel()
    mod = _LATTICE - 1  # the lattice size is a power of two: ``& mod`` wraps, negatives included
    total = np.zeros(u.shape, _F32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        x = u * _F32(1.0 / scale) + _F32(17.3 * octave)
        y = v * _F32(1.0 / scale) + _F32(31.7 * octave)
        xf, yf = np.floor(x), np.floor(y)
        fx, fy = x - xf, y - yf
        xi, yi = xf.astype(np.int32), yf.astype(np.int32)
        i0, i1 = xi & mod, (xi + 1) & mod
        j0, j1 = (yi & mod) * _LATTICE, ((yi + 1) & mod) * _LATTICE
        sx = fx * fx * fx * (fx * (fx * 6 - 15) + 10)
        sy = fy * fy * fy * (fy * (fy * 6 - 15) + 10)
        a, b = np.take(flat, j0 + i0), np.take(flat, j0 + i1)
        c, d = np.take(flat, j1 + i0), np.take(flat, j1 + i1)
        top = a + (b - a) * sx
        bottom = c + (d - c) * sx
        total += _F32(amplitude) * (top + (bottom - top) * sy)
        norm += amplitude
        amplitude *= 0.5
        scale *= 0.5
    noise: np.ndarray = total * _F32(1.6 / norm)
    return noise


def _coverage(distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (about a one-pixel box filter)."""
    cover: np.ndarray = np.clip(_F32(0.5) - distance, 0.0, 1.0).astype(_F32)
    return cover


def _box_sdf(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = x - _F32(cx), y - _F32(cy)
    qx = np.abs(dx * _F32(ca) + dy * _F32(sa)) - _F32(a)
    qy = np.abs(-dx * _F32(sa) + dy * _F32(ca)) - _F32(b)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    distance: np.ndarray = (outside + np.minimum(np.maximum(qx, qy), 0)).astype(_F32)
    return distance


def _bbox(
    matrix: np.ndarray, cx: float, cy: float, radius: float, width: int, height: int
) -> tuple[slice, slice] | None:
    """The pixel rows/columns of the frame a world-space disc may touch (None: off screen)."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    px, py = inverse @ np.array([cx, cy, 1.0])
    r = radius * 1.01 + 2.0  # the camera zooms by ~1 %
    x0, x1 = max(0, math.floor(px - 0.5 - r)), min(width, math.ceil(px - 0.5 + r) + 1)
    y0, y1 = max(0, math.floor(py - 0.5 - r)), min(height, math.ceil(py - 0.5 + r) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _render_set(scene: _Scene, matrix: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clean set at world coordinates (u, v): (H, W, 3) scene-linear RGB and (H, W) depth, float32."""
    height, width = u.shape
    low = _value_noise(u, v, scene.lattices[0], 96.0, 4)
    tint = _value_noise(u, v, scene.lattices[1], 150.0, 2)
    # Two envelopes: fine gratings in some places, coarse ones in others, smooth areas between.
    fine = np.clip(_value_noise(u, v, scene.lattices[2], 60.0, 2) * _F32(2.5) + _F32(0.1), 0.0, 1.0)
    coarse = np.clip(_value_noise(v, u, scene.lattices[2], 80.0, 1) * _F32(2.5) + _F32(0.1), 0.0, 1.0)
    texture = np.zeros_like(u)
    for k, (kx, ky, phase, amplitude) in enumerate(scene.gratings):
        texture += (fine if k < 2 else coarse) * _F32(amplitude) * np.sin(u * _F32(kx) + v * _F32(ky) + _F32(phase))
    luma = _F32(0.2) * np.exp(_F32(1.2) * low + _F32(0.5) * texture)
    rgb = np.empty((height, width, 3), _F32)
    rgb[:, :, 0] = luma * (1 + _F32(0.3) * tint)
    rgb[:, :, 1] = luma * (1 + _F32(0.04) * tint)
    rgb[:, :, 2] = luma * (1 - _F32(0.3) * tint) * _F32(0.9)
    depth = (_F32(12.0) + _F32(3.0) * low).astype(_F32)

    for shape in scene.shapes:
        reach = {"box": math.hypot(shape.a, shape.b), "disc": shape.a, "ring": shape.a + shape.b}[shape.kind]
        window = _bbox(matrix, shape.cx, shape.cy, reach + 2.0, width, height)
        if window is None:
            continue
        su, sv = u[window], v[window]
        if shape.kind == "box":
            d = _box_sdf(su, sv, shape.cx, shape.cy, shape.a, shape.b, shape.angle)
        elif shape.kind == "disc":
            d = (np.hypot(su - _F32(shape.cx), sv - _F32(shape.cy)) - _F32(shape.a)).astype(_F32)
        else:
            radial = np.hypot(su - _F32(shape.cx), sv - _F32(shape.cy)) - _F32(shape.a)
            d = (np.abs(radial) - _F32(shape.b)).astype(_F32)
        cover = _coverage(d)[:, :, None]
        colour = np.array(shape.colour, _F32)[None, None, :]
        if shape.stripes:
            along = (su - _F32(shape.cx)) * _F32(math.cos(shape.angle)) + (sv - _F32(shape.cy)) * _F32(
                math.sin(shape.angle)
            )
            # A square wave whose edges ramp over ~1.5 px: sharp, but not aliased like a point-sampled step.
            steep = _F32(shape.stripes / (1.5 * math.pi))
            stripe = np.clip(np.sin(along * _F32(2 * math.pi / shape.stripes)) * steep, -1.0, 1.0)
            colour = colour * (_F32(1.0) + _F32(0.45) * stripe[:, :, None])
        region = rgb[window]
        rgb[window] = region + (colour - region) * cover
        depth[window] = np.where(cover[:, :, 0] > 0.5, _F32(shape.depth), depth[window])

    for light in scene.lights:
        window = _bbox(matrix, light.cx, light.cy, 5.0 * light.sigma, width, height)
        if window is None:
            continue
        r2 = (u[window] - _F32(light.cx)) ** 2 + (v[window] - _F32(light.cy)) ** 2
        glow = _F32(light.peak) * np.exp(r2 * _F32(-0.5 / light.sigma**2))
        rgb[window] += glow[:, :, None] * np.array(light.colour, _F32)[None, None, :]
    np.maximum(rgb, _F32(0.004), out=rgb)
    return rgb, depth


def _render_rig(
    scene: _Scene, i: int, px: np.ndarray, py: np.ndarray, u: np.ndarray, v: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The rig's elements in frame index ``i``, back to front: (signed distance, colour (H, W, 3), depth).

    ``px, py`` are pixel-centre (screen) coordinates, ``u, v`` the world coordinates they see.
    """
    height, width = px.shape
    ph = scene.phases
    elements: list[tuple[np.ndarray, np.ndarray, float]] = []

    # The tape cross is stuck on the set: its distance field lives in world coordinates.
    tx, ty, tangle = scene.tape
    tape = np.minimum(_box_sdf(u, v, tx, ty, 6.5, 1.3, tangle), _box_sdf(u, v, tx, ty, 6.5, 1.3, tangle + math.pi / 2))
    elements.append((tape, np.broadcast_to(np.array([0.9, 0.32, 0.05], _F32), (height, width, 3)), 0.0))

    # The grey bar on its own path, against the pan, with a chequered marker at its end.
    bx = 0.2 * width + 2.3 * i + 9.0 * math.sin(0.4 * i + ph[2])
    by = 0.6 * height + 11.0 * math.sin(0.3 * i + ph[3])
    bangle = 1.2 + 0.05 * math.sin(0.5 * i + ph[4])
    half_length, half_width = 24.0, 4.0
    bar = _box_sdf(px, py, bx, by, half_length, half_width, bangle)
    along = (px - _F32(bx)) * _F32(math.cos(bangle)) + (py - _F32(by)) * _F32(math.sin(bangle))
    bar_colour = (_F32(0.16) + _F32(0.002) * along)[:, :, None] * np.array([1.0, 1.0, 1.05], _F32)[None, None, :]
    elements.append((bar, bar_colour, 2.5))
    mx = bx + (half_length + 6.0) * math.cos(bangle)
    my = by + (half_length + 6.0) * math.sin(bangle)
    marker = _box_sdf(px, py, mx, my, 6.0, 6.0, bangle)
    ca, sa = _F32(math.cos(bangle)), _F32(math.sin(bangle))
    mu = (px - _F32(mx)) * ca + (py - _F32(my)) * sa
    mv = -(px - _F32(mx)) * sa + (py - _F32(my)) * ca
    checker = np.where((mu > 0) == (mv > 0), _F32(0.85), _F32(0.03))
    elements.append((marker, np.repeat(checker[:, :, None], 3, axis=2), 2.5))

    # The wire: nearly vertical, across the whole frame, drifting against the pan and swaying.
    wx = 0.45 * width + 3.0 * i + 2.5 * math.sin(0.5 * i + ph[5])
    wangle = 0.22 + 0.03 * math.sin(0.25 * i + ph[6])
    wire = (
        np.abs((px - _F32(wx)) * _F32(math.cos(wangle)) - (py - _F32(height / 2)) * _F32(math.sin(wangle))) - _F32(0.8)
    ).astype(_F32)
    elements.append((wire, np.broadcast_to(np.array([0.012, 0.011, 0.010], _F32), (height, width, 3)), 4.0))
    return elements


def _frame(rgb: np.ndarray, depth: np.ndarray, window: Box, number: int) -> Frame:
    """A plate-like frame: R, G, B and an opaque A as half, Z as float."""
    half = rgb.astype(np.float16)
    channels = {
        "R": np.ascontiguousarray(half[:, :, 0]),
        "G": np.ascontiguousarray(half[:, :, 1]),
        "B": np.ascontiguousarray(half[:, :, 2]),
        "A": np.ones(depth.shape, np.float16),
        "Z": depth,
    }
    return Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE)


def make_shot(*, width: int = 480, height: int = 270, frames: int = 24, first_frame: int = 1001, seed: int = 0) -> Shot:
    """Render a synthetic shot: plates with a rig, exact clean plates and soft roto masks.

    Deterministic for a given ``seed`` and size; fast (well under 2 s for the default 24 frames).
    """
    if width < 16 or height < 16 or frames < 1:
        raise ValueError(f"make_shot needs at least 16x16 pixels and one frame, got {width}x{height}x{frames}")
    rng = np.random.default_rng(seed)
    scene = _scene(rng, width, height, frames)
    window = Box.from_size(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(_F32)
    px, py = xs + _F32(0.5), ys + _F32(0.5)

    shot = Shot(plates=[], cleans=[], masks=[], first_frame=first_frame, seed=seed)
    for i in range(frames):
        number = first_frame + i
        matrix = _camera(i, width, height, scene.phases)
        u = (matrix[0, 0] * px + matrix[0, 1] * py + matrix[0, 2]).astype(_F32)
        v = (matrix[1, 0] * px + matrix[1, 1] * py + matrix[1, 2]).astype(_F32)
        clean_rgb, depth = _render_set(scene, matrix, u, v)
        plate_rgb, plate_depth = clean_rgb.copy(), depth.copy()
        nearest = np.full((height, width), np.inf, _F32)
        for distance, colour, element_depth in _render_rig(scene, i, px, py, u, v):
            cover = _coverage(distance)
            ys, xs = np.nonzero(cover > 0)  # only these pixels change: the rest stays bit-exact
            weight = cover[ys, xs][:, None]
            plate_rgb[ys, xs] += (colour[ys, xs] - plate_rgb[ys, xs]) * weight
            if element_depth > 0:
                plate_depth[cover >= 0.5] = _F32(element_depth)
            np.minimum(nearest, distance, out=nearest)
        mask = np.clip((_F32(MASK_GROW + MASK_SOFTNESS) - nearest) / _F32(MASK_SOFTNESS), 0.0, 1.0).astype(_F32)

        shot.plates.append(_frame(plate_rgb, plate_depth, window, number))
        shot.cleans.append(_frame(clean_rgb, depth, window, number))
        shot.masks.append(Frame({"A": mask}, window, window, frame_number=number))
        shot.cameras.append(matrix)
    return shot


def _pad(number: int, width: int) -> str:
    return ("-" if number < 0 else "") + str(abs(number)).zfill(width)


def write_shot(shot: Shot, folder: str | Path) -> dict[str, str]:
    """Write ``plate.####.exr``, ``mask.####.exr`` and ``clean.####.exr`` under ``folder``.

    Returns the patterns written, by name (``{"plate": ".../plate.####.exr", ...}``).
    """
    from plateforge.exr import write_exr  # imported here: this module must import without it

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    patterns = {name: str(root / f"{name}.####.exr") for name in ("plate", "mask", "clean")}
    for number, plate, mask, clean in zip(shot.frame_numbers, shot.plates, shot.masks, shot.cleans, strict=True):
        for name, frame in (("plate", plate), ("mask", mask), ("clean", clean)):
            write_exr(str(root / f"{name}.{_pad(number, 4)}.exr"), frame)
    return patterns
