"""Synthetic matte dailies with exact ground truth: a moving subject over the set, for keying tests.

:func:`make_matte_shot` renders a short, deterministic (seeded) shot of a subject moving in front
of the set that :mod:`plateforge.shots.synthetic` renders (same textured background, same analytic
camera: imported from there, not copied), and keeps everything a matte is judged against::

    shot = make_matte_shot(seed=1)
    shot.plates[0], shot.cleans[0]          # Frames: subject over the set / the set alone
    shot.alphas[0], shot.foregrounds[0]     # the subject's exact alpha and premultiplied colour
    shot.backgrounds[0]                     # a second set, to replace the background with
    shot.composite(0)                       # (H, W, 3) exact foreground over that second set

**The subject** is a head and shoulders (a smooth union of an ellipse and a rounded box, the box
running out of the bottom of the frame like a medium shot), its clothing textured with value
noise in its own coordinates so the texture moves with it, and a fringe of thin hair strands
(sub-pixel wide, swaying, partly transparent) around the head. Its edge is soft (a ramp of about
1.5 pixels, like slight defocus). It moves on a smooth path of 3 to 6 pixels a frame with a
little rotation, and is **motion blurred** exactly: alpha and premultiplied colour are averaged
over :data:`SHUTTER_SAMPLES` instants of a 180-degree shutter. Odd seeds send it through the
left or right edge of the frame too (every shot already touches the bottom edge).

**Compositing** is done once, in scene-linear float, with premultiplied colour::

    plate = foreground + (1 - alpha) * clean          # before grain
    truth = foreground + (1 - alpha) * background     # the replacement a matte should give

so a key judged against ``alpha``/``truth`` is judged against the exact answer.

**Shadow and bounce** (opt-in: ``shadow`` and ``bounce`` above 0). A subject changes the light on
the set around it: its cast shadow (the subject's motion-blurred coverage, offset down and to the
side of the key light and softened into a penumbra) takes up to ``shadow`` of the set's light,
and its bounce (light off its clothing, a wide soft glow around it, tinted by the clothing) adds
``bounce`` times that colour. Both are one signed layer ``set_light`` (negative in the shadow,
positive in the bounce) that belongs to the subject, so it travels with it::

    plate = foreground + (1 - alpha) * (clean + set_light)
    truth = foreground + (1 - alpha) * (background + set_light)

(the convention of a shadow/bounce difference pass in a comp: what the subject did to the set
is added to the new set as it is). With both at 0 (the default) ``set_light`` is empty and the shot
is exactly what it was without them.

Like real dailies,
``plate`` and ``clean`` carry independent film grain (``grain``, a fraction of each pixel's
square-root signal; 0 turns it off) and are stored as half; the truths (alpha, foreground,
backgrounds) are float and grain-free.

Per frame, the shot also records the camera (as :mod:`plateforge.shots.synthetic` does) and the
subject's motion, a 2x3 affine taking pixel-centre coordinates of frame ``i`` to the subject's
own coordinates at the middle of that frame's shutter: :meth:`MatteShot.subject_flow` turns two
of them into the motion of subject pixels between frames (what temporal metrics warp with).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plateforge.frames import Box, Frame
from plateforge.shots.synthetic import COLOUR_SPACE, _camera, _pad, _render_set, _scene, _value_noise

__all__ = ["SHUTTER_SAMPLES", "MatteShot", "make_matte_shot", "write_matte_shot"]

#: Instants averaged over the (180-degree) shutter for motion blur.
SHUTTER_SAMPLES = 6
#: Pixels over which the subject's body edge ramps from 1 to 0.
EDGE_SOFTNESS = 1.5

_F32 = np.float32


@dataclass
class MatteShot:
    """A rendered matte shot: per frame plate, clean plate, exact alpha and foreground, a new background."""

    plates: list[Frame]
    cleans: list[Frame]
    #: Single float channel ``A``: the subject's exact coverage, motion blur included.
    alphas: list[Frame]
    #: ``R, G, B, A`` float: the subject's premultiplied colour and its alpha.
    foregrounds: list[Frame]
    #: ``R, G, B, A`` half: a second set seen through the same camera (A is 1).
    backgrounds: list[Frame]
    first_frame: int
    seed: int
    #: True when the subject crosses the left or right edge of the frame in some frame.
    crosses_side: bool
    #: Per frame, 2x3: pixel-centre coordinates -> world (the set's camera).
    cameras: list[np.ndarray] = field(default_factory=list)
    #: Per frame, 2x3: pixel-centre coordinates -> subject coordinates, mid-shutter.
    subject: list[np.ndarray] = field(default_factory=list)
    #: Per frame, ``(H, W, 3)`` float32: the light the subject takes from (shadow, negative) or adds
    #: to (bounce, positive) the set behind it; empty for a shot made without shadow and bounce.
    set_light: list[np.ndarray] = field(default_factory=list)

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

    def alpha(self, index: int) -> np.ndarray:
        """Frame ``index``'s exact alpha, ``(H, W)`` float32."""
        values: np.ndarray = self.alphas[index].channels["A"].astype(np.float32)
        return values

    def composite(self, index: int) -> np.ndarray:
        """Frame ``index``'s exact replacement: foreground over the second background (with the
        subject's shadow and bounce on it, when the shot has them), ``(H, W, 3)`` float32."""
        fg = self.foregrounds[index].stack(("R", "G", "B"))
        background = self.backgrounds[index].stack(("R", "G", "B"))
        if self.set_light:
            background = background + self.set_light[index]
        result: np.ndarray = (fg + (1.0 - self.alpha(index))[:, :, None] * background).astype(np.float32)
        return result

    def subject_flow(self, index: int, other: int) -> np.ndarray:
        """2x3 affine taking pixel-centre coordinates of frame ``index`` to where the same point of
        the subject is in frame ``other`` (at mid-shutter)."""
        to_other = np.linalg.inv(np.vstack([self.subject[other], [0.0, 0.0, 1.0]]))
        flow: np.ndarray = (to_other @ np.vstack([self.subject[index], [0.0, 0.0, 1.0]]))[:2]
        return flow


@dataclass(frozen=True)
class _Subject:
    """What a seed decides about the subject."""

    start: tuple[float, float]  # centre of the head at frame 0, pixels
    velocity: tuple[float, float]  # pixels a frame
    wobble: tuple[float, float, float]  # amplitude (px), angular speed, phase of a sideways bob
    lean: tuple[float, float]  # amplitude (radians) and phase of a rocking rotation
    scale: float  # head radius in pixels
    cloth: tuple[float, float, float]  # clothing colour, scene-linear
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    lattice: np.ndarray
    strands: np.ndarray  # (S, 4): root angle, length, sway phase, opacity
    strand_width: float  # pixels


def _subject(rng: np.random.Generator, width: int, height: int, frames: int, crosses: bool) -> _Subject:
    scale = 0.11 * height * float(rng.uniform(0.9, 1.15))
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    speed = float(rng.uniform(3.0, 6.0))
    if crosses:
        # Start with the head cut by the frame edge and walk in.
        x0 = -0.3 * scale if direction > 0 else width + 0.3 * scale
    else:
        travel = speed * frames
        x0 = width / 2 - direction * travel / 2 + float(rng.uniform(-0.05, 0.05)) * width
    y0 = float(rng.uniform(0.38, 0.5)) * height
    # Colours at the set's level (0.02..1.5 linear), so a difference key has work to do.
    cloth = tuple(float(c) for c in rng.uniform(0.05, 0.5, 3))
    skin = tuple(float(c) for c in np.array([0.55, 0.36, 0.27]) * rng.uniform(0.6, 1.3))
    hair = tuple(float(c) for c in np.array([0.12, 0.08, 0.05]) * rng.uniform(0.5, 2.5))
    count = 70
    strands = np.stack(
        [
            rng.uniform(-math.pi * 0.95, 0.0, count),  # around the top of the head
            rng.uniform(0.25, 0.7, count) * scale,
            rng.uniform(0, 2 * math.pi, count),
            rng.uniform(0.5, 1.0, count),
        ],
        axis=1,
    )
    return _Subject(
        start=(x0, y0),
        velocity=(direction * speed, float(rng.uniform(-0.4, 0.4))),
        wobble=(float(rng.uniform(1.0, 4.0)), float(rng.uniform(0.3, 0.7)), float(rng.uniform(0, 2 * math.pi))),
        lean=(float(rng.uniform(0.03, 0.09)), float(rng.uniform(0, 2 * math.pi))),
        scale=scale,
        cloth=(cloth[0], cloth[1], cloth[2]),
        skin=(skin[0], skin[1], skin[2]),
        hair=(hair[0], hair[1], hair[2]),
        lattice=rng.uniform(-1.0, 1.0, (64, 64)).astype(_F32),
        strands=strands,
        strand_width=float(rng.uniform(0.35, 0.6)),
    )


def _pose(subject: _Subject, t: float) -> np.ndarray:
    """2x3: pixel-centre coordinates -> subject coordinates (head centre at 0, pixels) at time ``t``."""
    amplitude, speed, phase = subject.wobble
    cx = subject.start[0] + subject.velocity[0] * t
    cy = subject.start[1] + subject.velocity[1] * t + amplitude * math.sin(speed * t + phase)
    theta = subject.lean[0] * math.sin(0.35 * t + subject.lean[1])
    c, s = math.cos(theta), math.sin(theta)
    # local = R(-theta) (p - centre)
    return np.array([[c, s, -(c * cx + s * cy)], [-s, c, s * cx - c * cy]], dtype=np.float64)


def _segment_distance(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = np.clip(((px - a[0]) * dx + (py - a[1]) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    distance: np.ndarray = np.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy)).astype(_F32)
    return distance


def _render_subject(subject: _Subject, t: float, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subject at instant ``t``: alpha ``(H, W)`` and premultiplied colour ``(H, W, 3)``, float32."""
    height, width = px.shape
    pose = _pose(subject, t)
    lx = (pose[0, 0] * px + pose[0, 1] * py + pose[0, 2]).astype(_F32)
    ly = (pose[1, 0] * px + pose[1, 1] * py + pose[1, 2]).astype(_F32)
    r = _F32(subject.scale)
    # Head: an ellipse (approximate distance, exact enough for a 1.5 px ramp).
    head = (np.hypot(lx / _F32(0.82), ly) - r).astype(_F32)
    # Shoulders: a rounded box from under the chin past the bottom of the frame.
    qx = np.abs(lx) - _F32(2.1) * r
    qy = np.abs(ly - _F32(4.2) * r) - _F32(3.0) * r
    rounding = _F32(0.9) * r
    body = (
        np.hypot(np.maximum(qx + rounding, 0), np.maximum(qy + rounding, 0))
        + np.minimum(np.maximum(qx + rounding, qy + rounding), 0)
        - rounding
    ).astype(_F32)
    # A smooth union (polynomial smooth-min) joins them with a neck.
    k = _F32(0.35) * r
    h = np.clip(_F32(0.5) + _F32(0.5) * (body - head) / k, 0.0, 1.0)
    sdf = body + (head - body) * h - k * h * (1 - h)
    body_alpha = np.clip(_F32(0.5) - sdf / _F32(EDGE_SOFTNESS), 0.0, 1.0).astype(_F32)
    texture = _value_noise(lx, ly, subject.lattice, 0.6 * subject.scale, 3)
    skin_weight = np.clip((head - body) * _F32(-0.5) + _F32(0.5), 0.0, 1.0)[:, :, None]
    cloth = np.array(subject.cloth, _F32) * (_F32(1.0) + _F32(0.45) * texture)[:, :, None]
    skin = np.array(subject.skin, _F32) * (_F32(1.0) + _F32(0.08) * texture)[:, :, None]
    colour = cloth + (skin - cloth) * skin_weight
    alpha = body_alpha
    premult = colour * body_alpha[:, :, None]

    # Hair strands over the body: thin, partly transparent, swaying; drawn within their own boxes.
    hair = np.zeros((height, width), _F32)  # 1 - prod(1 - coverage)
    inverse = np.linalg.inv(np.vstack([pose, [0.0, 0.0, 1.0]]))[:2]
    for angle, length, phase, opacity in subject.strands:
        root = (0.82 * float(r) * 0.92 * math.cos(angle), float(r) * 0.92 * math.sin(angle))
        out = (math.cos(angle), math.sin(angle))
        points = []
        for j in range(5):
            s = j / 4
            sway = 0.25 * length * s * s * math.sin(0.8 * t + phase)
            lx_j = root[0] + s * length * out[0] - sway * out[1]
            ly_j = root[1] + s * length * out[1] + sway * out[0] + 0.15 * length * s * s  # droop
            points.append(inverse @ np.array([lx_j, ly_j, 1.0]))
        for a, b in itertools.pairwise(points):
            x0, x1 = max(0, math.floor(min(a[0], b[0]) - 2)), min(width, math.ceil(max(a[0], b[0]) + 2))
            y0, y1 = max(0, math.floor(min(a[1], b[1]) - 2)), min(height, math.ceil(max(a[1], b[1]) + 2))
            if x0 >= x1 or y0 >= y1:
                continue
            d = _segment_distance(px[y0:y1, x0:x1], py[y0:y1, x0:x1], (a[0], a[1]), (b[0], b[1]))
            # A tent of one pixel radius whose area is the strand's width: a sub-pixel line.
            cover = np.clip(_F32(1.0) - d, 0.0, 1.0) * _F32(subject.strand_width * opacity)
            region = hair[y0:y1, x0:x1]
            hair[y0:y1, x0:x1] = region + (1 - region) * np.minimum(cover, 1.0)
    hair_colour = np.array(subject.hair, _F32)
    premult = hair[:, :, None] * hair_colour + (1 - hair[:, :, None]) * premult
    alpha = hair + (1 - hair) * alpha
    return alpha.astype(_F32), premult.astype(_F32)


def _plate_frame(rgb: np.ndarray, window: Box, number: int) -> Frame:
    half = rgb.astype(np.float16)
    channels = {name: np.ascontiguousarray(half[:, :, k]) for k, name in enumerate(("R", "G", "B"))}
    channels["A"] = np.ones(rgb.shape[:2], np.float16)
    return Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE)


def _grain(rng: np.random.Generator, rgb: np.ndarray, amount: float) -> np.ndarray:
    if amount <= 0:
        return rgb
    noise = rng.standard_normal(rgb.shape).astype(_F32) * _F32(amount) * np.sqrt(np.maximum(rgb, 0.0))
    grained: np.ndarray = np.maximum(rgb + noise, _F32(0.0)).astype(_F32)
    return grained


def _soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` ``(H, W)`` blurred by a Gaussian of ``sigma`` pixels (separable, zero outside)."""
    radius = max(1, math.ceil(3 * sigma))
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(xs**2) / (2 * sigma * sigma))
    kernel /= kernel.sum()
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, image.astype(np.float64))
    both: np.ndarray = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, rows)
    return both.astype(_F32)


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved by whole pixels (``dx`` right, ``dy`` down), zero where nothing moved in."""
    height, width = image.shape
    out = np.zeros_like(image)
    ys, yd = (slice(0, height - dy), slice(dy, height)) if dy >= 0 else (slice(-dy, height), slice(0, height + dy))
    xs, xd = (slice(0, width - dx), slice(dx, width)) if dx >= 0 else (slice(-dx, width), slice(0, width + dx))
    out[yd, xd] = image[ys, xs]
    return out


def _set_light(
    alpha: np.ndarray, clean: np.ndarray, subject: _Subject, shadow: float, bounce: float, side: float
) -> np.ndarray:
    """The subject's shadow and bounce on the set, ``(H, W, 3)`` (see the module doc)."""
    scale = subject.scale
    cast = _soft(_shifted(alpha, round(side * 0.7 * scale), round(0.35 * scale)), 0.18 * scale)
    glow = _soft(alpha, 0.6 * scale)
    light = -_F32(shadow) * np.clip(cast, 0.0, 1.0)[:, :, None] * clean
    light += _F32(bounce) * np.clip(glow, 0.0, 1.0)[:, :, None] * np.array(subject.cloth, _F32)
    result: np.ndarray = light.astype(_F32)
    return result


def make_matte_shot(
    *,
    width: int = 480,
    height: int = 270,
    frames: int = 24,
    first_frame: int = 1001,
    seed: int = 0,
    grain: float = 0.01,
    crosses_side: bool | None = None,
    shadow: float = 0.0,
    bounce: float = 0.0,
) -> MatteShot:
    """Render a matte shot (see the module doc). Deterministic for a given seed, size and grain.

    ``crosses_side``: whether the subject also walks through the left or right frame edge
    (None: for odd seeds). ``grain``: film grain on plate and clean plate, as a fraction of the
    square root of each value (0.01 is a fine 35 mm stock; 0 gives exact, grain-free plates).
    ``shadow`` (0 to 1) and ``bounce`` (0 or more): the subject's cast shadow and bounce light on
    the set (see the module doc; 0: none, the shot as made without them).
    """
    if width < 32 or height < 32 or frames < 1:
        raise ValueError(f"make_matte_shot needs at least 32x32 pixels and one frame, got {width}x{height}x{frames}")
    if not (math.isfinite(grain) and grain >= 0):
        raise ValueError(f"grain must be a finite number >= 0, got {grain!r}")
    if not (math.isfinite(shadow) and 0.0 <= shadow <= 1.0 and math.isfinite(bounce) and bounce >= 0.0):
        raise ValueError(f"shadow must be in [0, 1] and bounce a finite number >= 0, got {shadow!r}, {bounce!r}")
    crosses = bool(seed % 2) if crosses_side is None else crosses_side
    rng = np.random.default_rng([seed, 5])
    scene = _scene(np.random.default_rng([seed, 6]), width, height, frames)
    second = _scene(np.random.default_rng([seed, 7]), width, height, frames)
    subject = _subject(rng, width, height, frames, crosses)
    grain_rng = np.random.default_rng([seed, 8])
    window = Box.from_size(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(_F32)
    px, py = xs + _F32(0.5), ys + _F32(0.5)

    shot = MatteShot([], [], [], [], [], first_frame=first_frame, seed=seed, crosses_side=False)
    for i in range(frames):
        number = first_frame + i
        camera = _camera(i, width, height, scene.phases)
        u = (camera[0, 0] * px + camera[0, 1] * py + camera[0, 2]).astype(_F32)
        v = (camera[1, 0] * px + camera[1, 1] * py + camera[1, 2]).astype(_F32)
        clean, _ = _render_set(scene, camera, u, v)
        other, _ = _render_set(second, camera, u, v)
        # A 180-degree shutter centred on the frame: instants spread over [i - 1/4, i + 1/4].
        alpha = np.zeros((height, width), _F32)
        fg = np.zeros((height, width, 3), _F32)
        for k in range(SHUTTER_SAMPLES):
            t = i + 0.5 * ((k + 0.5) / SHUTTER_SAMPLES - 0.5)
            a, c = _render_subject(subject, t, px, py)
            alpha += a
            fg += c
        alpha /= _F32(SHUTTER_SAMPLES)
        fg /= _F32(SHUTTER_SAMPLES)
        alpha = np.clip(alpha, 0.0, 1.0)
        if alpha[:, 0].max() > 0 or alpha[:, -1].max() > 0:
            shot.crosses_side = True
        behind = clean
        if shadow > 0 or bounce > 0:
            # The key light falls from the side the seed picks, the shadow away from it (its own
            # stream: the shot without shadow and bounce is unchanged).
            side = 1.0 if np.random.default_rng([seed, 9]).uniform() < 0.5 else -1.0
            light = _set_light(alpha, clean, subject, shadow, bounce, side)
            shot.set_light.append(light)
            behind = clean + light
        plate = fg + (1 - alpha)[:, :, None] * behind
        shot.plates.append(_plate_frame(_grain(grain_rng, plate, grain), window, number))
        shot.cleans.append(_plate_frame(_grain(grain_rng, clean, grain), window, number))
        shot.alphas.append(Frame({"A": alpha}, window, window, frame_number=number))
        channels = {name: np.ascontiguousarray(fg[:, :, k]) for k, name in enumerate(("R", "G", "B"))}
        channels["A"] = alpha
        shot.foregrounds.append(Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE))
        shot.backgrounds.append(_plate_frame(other, window, number))
        shot.cameras.append(camera)
        shot.subject.append(_pose(subject, float(i)))
    return shot


#: File name stems :func:`write_matte_shot` writes, by what they hold.
_NAMES = {
    "plate": "plates",
    "clean": "cleans",
    "alpha": "alphas",
    "foreground": "foregrounds",
    "background": "backgrounds",
}


def write_matte_shot(shot: MatteShot, folder: str | Path) -> dict[str, str]:
    """Write ``plate``, ``clean``, ``alpha``, ``foreground`` and ``background`` ``.####.exr`` under
    ``folder`` (atomically, as :func:`plateforge.exr.write_exr` does); the patterns written, by name."""
    from plateforge.exr import write_exr  # imported here: this module must import without it

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    patterns = {name: str(root / f"{name}.####.exr") for name in _NAMES}
    for index, number in enumerate(shot.frame_numbers):
        for name, attribute in _NAMES.items():
            frame: Frame = getattr(shot, attribute)[index]
            write_exr(str(root / f"{name}.{_pad(number, 4)}.exr"), frame)
    return patterns
