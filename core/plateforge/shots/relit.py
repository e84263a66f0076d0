"""Relit and graded versions of a synthetic shot, with exact ground truth and matching AOVs.

:func:`make_relit_shot` renders the set of :func:`plateforge.shots.synthetic.make_shot` (same scene and
camera for a given seed, no rig) and, per frame, three exact images of it::

    shot = make_relit_shot(seed=3)
    shot.plates[0]    # the set as shot: R, G, B (half), A, Z, and AOVs N.x N.y N.z P.x P.y P.z
    shot.relits[0]    # the same frame relit: a key light added, a practical switched on
    shot.looks[0]     # the same frame graded (the "look" variant)

**The geometry the AOVs describe.** The set is a height field seen from the front: world
``x, y`` are the synthetic set's world coordinates (pixels at the first frame's scale) and world
``z`` (away from the camera) is :data:`DEPTH_SCALE` times the plate's ``Z`` depth, so the
background relief (``Z = 12 + 3 * noise``) has real slopes and the shapes are flat cards nearer
the camera. ``P.x, P.y, P.z`` are that world position times :data:`P_SCALE` (so values stay near
1, where a net's encoded inputs resolve them finely); ``N.x, N.y, N.z`` is the unit world-space
normal of the height field (the background's from the exact gradient of its noise, the cards'
facing the camera, ``(0, 0, -1)``).

**The relight** is computed from exactly those AOVs, so a net that reads them can learn it:

* a *key light*: a point light at :attr:`RelitShot.key_light` (P units), Lambert shading with
  a soft inverse-square falloff, tinted; it multiplies the set's colour (the plate is taken as
  albedo times the existing light), ``relit = plate * (1 + gain * colour)``;
* a *practical switched on*: a small lamp fixture stuck on the set (dark in the plate) turns
  bright and throws a warm pool of light on the set around it.

Both depend on where a pixel is in the world, not on its colour, and the lit pool moves across
the frame with the camera: no global colour transform can express the change.

**The look** is a grade, the same on every frame: an ASC CDL per channel (slope, offset, power,
on values clipped at 0) followed by a saturation change about Rec.709 luminance. It is global but
not linear (the power), which a 3x4 affine fit only approximates.

Relit and look frames carry the plate's A, Z and AOV channels unchanged (a render of the relit
set has the same geometry). With ``aovs=False`` no frame has AOV channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plateforge.frames import Box, Frame
from plateforge.shots.synthetic import COLOUR_SPACE, _camera, _render_set, _scene, _value_noise

__all__ = [
    "AOV_CHANNELS",
    "DEPTH_SCALE",
    "P_SCALE",
    "Grade",
    "KeyLight",
    "Practical",
    "RelitShot",
    "apply_grade",
    "make_relit_shot",
    "write_relit_shot",
]

#: The AOV channels plates carry: world normal and world position (scaled by :data:`P_SCALE`).
AOV_CHANNELS = ("N.x", "N.y", "N.z", "P.x", "P.y", "P.z")
#: World units (pixels at the first frame's scale) along z per unit of the plate's Z depth.
DEPTH_SCALE = 8.0
#: P channels are world units times this.
P_SCALE = 0.01

_F32 = np.float32
_LUMA = np.array([0.2126, 0.7152, 0.0722], _F32)
#: The synthetic set's background depth is 12 + 3 * this noise (lattice 0, scale 96, 4 octaves).
_RELIEF = (0, 96.0, 4)
_PRACTICAL_DEPTH = 4.0


@dataclass(frozen=True)
class KeyLight:
    """A point light in P units, with a soft inverse-square falloff over ``radius`` (P units)."""

    position: tuple[float, float, float]
    colour: tuple[float, float, float]
    intensity: float
    radius: float


@dataclass(frozen=True)
class Practical:
    """A lamp fixture stuck on the set at world ``(x, y)``, off in the plate, on when relit."""

    x: float
    y: float
    colour: tuple[float, float, float]
    #: Radius of the fixture (world units).
    size: float
    #: Emission of the fixture when on.
    emission: float
    #: Gain and spread (world units, a Gaussian sigma) of the pool of light it throws.
    gain: float
    spread: float


@dataclass(frozen=True)
class Grade:
    """An ASC CDL per channel then a saturation: the look."""

    slope: tuple[float, float, float]
    offset: tuple[float, float, float]
    power: tuple[float, float, float]
    saturation: float


@dataclass
class RelitShot:
    """Per frame: the plate, its relit version and its graded version (see the module doc)."""

    plates: list[Frame]
    relits: list[Frame]
    looks: list[Frame]
    first_frame: int
    seed: int
    key_light: KeyLight
    practical: Practical
    grade: Grade
    cameras: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.plates)

    @property
    def frame_numbers(self) -> list[int]:
        return [self.first_frame + i for i in range(len(self.plates))]


def apply_grade(rgb: np.ndarray, grade: Grade) -> np.ndarray:
    """The look on ``(..., 3)`` scene-linear values, float32."""
    slope, offset, power = (np.array(v, _F32) for v in (grade.slope, grade.offset, grade.power))
    cdl = np.maximum(rgb.astype(_F32) * slope + offset, _F32(0.0)) ** power
    luma = (cdl @ _LUMA)[..., None]
    graded: np.ndarray = (luma + _F32(grade.saturation) * (cdl - luma)).astype(_F32)
    return graded


def _relief(scene_lattice: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d(background Z)/du and /dv, by central differences of the exact noise (half a world unit)."""
    _, scale, octaves = _RELIEF
    h = _F32(0.5)
    du = _value_noise(u + h, v, scene_lattice, scale, octaves) - _value_noise(u - h, v, scene_lattice, scale, octaves)
    dv = _value_noise(u, v + h, scene_lattice, scale, octaves) - _value_noise(u, v - h, scene_lattice, scale, octaves)
    return (_F32(3.0) * du / (2 * h)).astype(_F32), (_F32(3.0) * dv / (2 * h)).astype(_F32)


def _frame(rgb: np.ndarray, extra: dict[str, np.ndarray], window: Box, number: int) -> Frame:
    half = rgb.astype(np.float16)
    channels = {name: np.ascontiguousarray(half[:, :, k]) for k, name in enumerate(("R", "G", "B"))}
    channels.update(extra)
    return Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE)


def _lights(rng: np.random.Generator, width: int, height: int, frames: int) -> tuple[KeyLight, Practical, Grade]:
    """The relight and the look of a shot, placed where the camera sees them for most of it."""
    # The camera pans ~3.1 world units right and ~0.8 up a frame: aim at the middle frame's centre.
    cx, cy = width / 2 + 3.1 * (frames - 1) / 2, height / 2 - 0.4 * (frames - 1)
    hue = rng.uniform(0, 2 * math.pi)
    tint = tuple(float(0.75 + 0.25 * math.cos(hue + k * 2 * math.pi / 3)) for k in range(3))
    key = KeyLight(
        position=(
            (cx + rng.uniform(-0.25, 0.25) * width) * P_SCALE,
            (cy + rng.uniform(-0.25, 0.25) * height) * P_SCALE,
            float(rng.uniform(0.0, 0.2)),
        ),
        colour=(tint[0], tint[1], tint[2]),
        intensity=float(rng.uniform(1.5, 2.5)),
        radius=float(rng.uniform(0.5, 0.9)),
    )
    practical = Practical(
        x=float(cx + rng.uniform(-0.3, 0.3) * width),
        y=float(cy + rng.uniform(-0.3, 0.3) * height),
        colour=(1.0, float(rng.uniform(0.7, 0.85)), float(rng.uniform(0.4, 0.55))),
        size=float(rng.uniform(3.0, 4.5)),
        emission=float(rng.uniform(6.0, 10.0)),
        gain=float(rng.uniform(2.0, 3.5)),
        spread=float(rng.uniform(10.0, 16.0)),
    )
    grade = Grade(
        slope=(float(rng.uniform(1.05, 1.2)), float(rng.uniform(0.95, 1.05)), float(rng.uniform(0.8, 0.9))),
        offset=(float(rng.uniform(0.0, 0.01)), 0.0, float(rng.uniform(-0.01, 0.0))),
        power=(float(rng.uniform(0.85, 0.95)), float(rng.uniform(0.9, 1.0)), float(rng.uniform(1.0, 1.1))),
        saturation=float(rng.uniform(0.7, 0.85)),
    )
    return key, practical, grade


def make_relit_shot(
    *, width: int = 480, height: int = 270, frames: int = 24, first_frame: int = 1001, seed: int = 0, aovs: bool = True
) -> RelitShot:
    """Render a shot's plates with their relit and graded versions (see the module doc).

    Deterministic for a given ``seed`` and size; the set and camera are those of
    :func:`plateforge.shots.synthetic.make_shot` with the same arguments.
    """
    if width < 16 or height < 16 or frames < 1:
        raise ValueError(f"make_relit_shot needs at least 16x16 pixels and one frame, got {width}x{height}x{frames}")
    scene = _scene(np.random.default_rng(seed), width, height, frames)
    key, practical, grade = _lights(np.random.default_rng([seed, 7]), width, height, frames)
    window = Box.from_size(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(_F32)
    px, py = xs + _F32(0.5), ys + _F32(0.5)
    key_colour = np.array(key.colour, _F32)
    lamp_colour = np.array(practical.colour, _F32)

    shot = RelitShot([], [], [], first_frame, seed, key, practical, grade)
    for i in range(frames):
        number = first_frame + i
        matrix = _camera(i, width, height, scene.phases)
        u = (matrix[0, 0] * px + matrix[0, 1] * py + matrix[0, 2]).astype(_F32)
        v = (matrix[1, 0] * px + matrix[1, 1] * py + matrix[1, 2]).astype(_F32)
        rgb, depth = _render_set(scene, matrix, u, v)

        # The practical's fixture: a dark disc (with a lighter rim) on a card nearer the camera.
        r_lamp = np.hypot(u - _F32(practical.x), v - _F32(practical.y))
        cover = np.clip(_F32(0.5) - (r_lamp - _F32(practical.size)), 0.0, 1.0)[:, :, None]
        rim = np.clip(_F32(1.0) - np.abs(r_lamp - _F32(practical.size - 0.8)), 0.0, 1.0)[:, :, None]
        fixture = _F32(0.03) + _F32(0.25) * rim
        rgb = rgb + (fixture - rgb) * cover
        depth = np.where(cover[:, :, 0] > 0.5, _F32(_PRACTICAL_DEPTH), depth).astype(_F32)

        # Geometry: background relief from its exact gradient; cards (shapes, the fixture) face the camera.
        background = _F32(12.0) + _F32(3.0) * _value_noise(u, v, scene.lattices[_RELIEF[0]], _RELIEF[1], _RELIEF[2])
        on_card = np.abs(depth - background) > _F32(1e-4)
        dz_du, dz_dv = _relief(scene.lattices[_RELIEF[0]], u, v)
        normal = np.stack([dz_du * _F32(DEPTH_SCALE), dz_dv * _F32(DEPTH_SCALE), -np.ones_like(u)], axis=2)
        normal[on_card] = (0.0, 0.0, -1.0)
        normal /= np.linalg.norm(normal, axis=2, keepdims=True)
        position = np.stack([u, v, depth * _F32(DEPTH_SCALE)], axis=2) * _F32(P_SCALE)

        extra = {"A": np.ones((height, width), np.float16), "Z": depth}
        if aovs:
            for k, name in enumerate(AOV_CHANNELS[:3]):
                extra[name] = np.ascontiguousarray(normal[:, :, k], dtype=_F32)
            for k, name in enumerate(AOV_CHANNELS[3:]):
                extra[name] = np.ascontiguousarray(position[:, :, k], dtype=_F32)
        plate = _frame(rgb, extra, window, number)
        # Relit and graded from the plate as stored (half): the pairs are exactly what a comp reads.
        stored = plate.stack(("R", "G", "B"))

        # The key light, from the AOVs alone.
        to_light = np.array(key.position, _F32) - position
        distance = np.linalg.norm(to_light, axis=2)
        lambert = np.maximum((normal * to_light).sum(axis=2) / np.maximum(distance, _F32(1e-6)), 0.0)
        gain = _F32(key.intensity) * lambert / (_F32(1.0) + (distance / _F32(key.radius)) ** 2)
        relit = stored * (_F32(1.0) + gain[:, :, None] * key_colour)
        # The practical switched on: its pool of light on the set, and the fixture itself glowing.
        pool = _F32(practical.gain) * np.exp(r_lamp**2 * _F32(-0.5 / practical.spread**2))
        relit = relit * (_F32(1.0) + pool[:, :, None] * lamp_colour)
        relit = relit + (_F32(practical.emission) * lamp_colour - relit) * cover * (_F32(1.0) - _F32(0.6) * rim)
        relit = relit.astype(_F32)

        shot.plates.append(plate)
        shot.relits.append(_frame(relit, extra, window, number))
        shot.looks.append(_frame(apply_grade(stored, grade), extra, window, number))
        shot.cameras.append(matrix)
    return shot


def _pad(number: int, width: int) -> str:
    return ("-" if number < 0 else "") + str(abs(number)).zfill(width)


def write_relit_shot(shot: RelitShot, folder: str | Path) -> dict[str, str]:
    """Write ``plate.####.exr``, ``relit.####.exr`` and ``look.####.exr`` under ``folder``.

    Returns the patterns written, by name.
    """
    from plateforge.exr import write_exr  # imported here: this module must import without it

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    patterns = {name: str(root / f"{name}.####.exr") for name in ("plate", "relit", "look")}
    for number, plate, relit, look in zip(shot.frame_numbers, shot.plates, shot.relits, shot.looks, strict=True):
        for name, frame in (("plate", plate), ("relit", relit), ("look", look)):
            write_exr(str(root / f"{name}.{_pad(number, 4)}.exr"), frame)
    return patterns
