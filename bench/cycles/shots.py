"""A rendered Cycles shot, loaded as the objects the evaluation code already scores.

:func:`load_cycles_shot` renders (or finds cached) one spec entry and returns a
:class:`CyclesShot`; its views hand the same frames to each tool's evaluation unchanged:

* :meth:`CyclesShot.cleanup`: a :class:`plateforge.shots.synthetic.Shot` (plates with the rig, the exact
  clean plates without it, an artist-style roto mask grown from the rig's true coverage exactly
  as the analytic generator grows it: :data:`~plateforge.shots.synthetic.MASK_GROW` then
  :data:`~plateforge.shots.synthetic.MASK_SOFTNESS` pixels);
* :meth:`CyclesShot.matte`: a :class:`plateforge.shots.dailies.MatteShot` (the plate, the set without the
  subject, the subject's true coverage and premultiplied colour from the holdout render, the
  second set through the same camera, the subject's screen motion);
* :meth:`CyclesShot.relit`: a :class:`plateforge.shots.relit.RelitShot` (plates with AOVs, the relit plate:
  the key light moved and a practical switched on, and a graded "look").

Channels: R, G, B as half (like dailies), A as half 1 on opaque plates, ``Z`` (Cycles' depth) as
float; plates also carry ``N.x N.y N.z`` (world normal), ``P.x P.y P.z`` (world position, metres)
and ``albedo.R albedo.G albedo.B`` (Cycles' diffuse colour). Every image is scene-linear
(Rec.709), written (and denoised) by Cycles itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from plateforge.exr import read_exr_parts
from plateforge.frames import Box, Frame
from plateforge.shots.dailies import MatteShot
from plateforge.shots.relit import Grade, KeyLight, Practical, RelitShot, apply_grade
from plateforge.shots.synthetic import COLOUR_SPACE, MASK_GROW, MASK_SOFTNESS, Shot

from .render import CACHE, VARIANTS, render_shot, variant_frames
from .spec import ShotSpec

__all__ = ["CyclesShot", "RenderedShot", "load_cycles_shot", "read_render", "roto_mask"]

_F32 = np.float32
_LAYER = "ViewLayer"


def read_render(path: Path, passes_wanted: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A multilayer render as ``{"Combined": (H, W, 4), "Depth": (H, W), "Normal": (H, W, 3), ...}``, float32.

    ``passes_wanted``: only these passes (None: all of them).
    """
    passes: dict[str, np.ndarray] = {}
    for name, frame in read_exr_parts(path):
        pass_name = name.removeprefix(f"{_LAYER}.")
        if passes_wanted is not None and pass_name not in passes_wanted:
            continue
        suffixes = [c.rsplit(".", 1)[1] for c in frame.channels]
        order = [s for s in ("R", "G", "B", "A", "X", "Y", "Z") if s in suffixes]
        stack = np.stack([frame.channels[f"{name}.{s}"].astype(_F32) for s in order], axis=-1)
        passes[pass_name] = stack[:, :, 0] if stack.shape[2] == 1 else stack
    return passes


def roto_mask(coverage: np.ndarray) -> np.ndarray:
    """An artist-style roto of whatever ``coverage`` (H, W) touches: 1 within MASK_GROW pixels, then a soft edge."""
    outside = (coverage <= 0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5).astype(_F32)
    # distance runs centre to centre; the covered pixel's own edge is half a pixel nearer
    mask: np.ndarray = np.clip((_F32(MASK_GROW + MASK_SOFTNESS + 0.5) - distance) / _F32(MASK_SOFTNESS), 0.0, 1.0)
    return mask.astype(_F32)


def _rgb_frame(rgb: np.ndarray, window: Box, number: int, extra: dict[str, np.ndarray] | None = None) -> Frame:
    half = rgb.astype(np.float16)
    channels = {name: np.ascontiguousarray(half[:, :, k]) for k, name in enumerate(("R", "G", "B"))}
    channels["A"] = np.ones(rgb.shape[:2], np.float16)
    channels.update(extra or {})
    return Frame(channels, window, window, frame_number=number, colour_space=COLOUR_SPACE)


@dataclass
class RenderedShot(Shot):
    """A cleanup :class:`~plateforge.shots.synthetic.Shot` whose cameras are 3D: ``revealed`` uses the P pass."""

    positions: list[np.ndarray] = field(default_factory=list)  # per frame, (H, W, 3) world position behind the rig
    depths: list[np.ndarray] = field(default_factory=list)  # per frame, (H, W) Cycles depth of the clean plate
    world_to_camera: list[np.ndarray] = field(default_factory=list)  # per frame, 4x4
    focal_px: float = 1.0

    def _project(self, n: int, world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        local = self.world_to_camera[n] @ np.vstack([world.T, np.ones(len(world))])
        depth = -local[2]
        x = self.width / 2 + self.focal_px * local[0] / depth
        y = self.height / 2 - self.focal_px * local[1] / depth
        return x, y, depth

    def revealed(self, frame_number: int, radius: int | None = None) -> np.ndarray:
        """Which pixels under the mask another frame shows (see :meth:`Shot.revealed`), from the P
        pass and the cameras: the world point behind the rig, projected into the other frame, lands
        on an unmasked pixel whose depth agrees (within 2 %: not hidden there)."""
        t = self.index(frame_number)
        ys, xs = np.nonzero(self.masks[t].channels["A"] > 0)
        world = self.positions[t][ys, xs].astype(np.float64)
        shown = np.zeros(len(xs), bool)
        for n in range(len(self)):
            if n == t or (radius is not None and abs(n - t) > radius):
                continue
            x, y, depth = self._project(n, world)
            qx, qy = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
            inside = (qx >= 0) & (qx < self.width) & (qy >= 0) & (qy < self.height) & (depth > 0)
            clear = np.zeros(len(xs), bool)
            qi, qj = qy[inside], qx[inside]
            seen = self.depths[n][qi, qj]
            clear[inside] = (self.masks[n].channels["A"][qi, qj] == 0) & (np.abs(seen - depth[inside]) < 0.02 * seen)
            shown |= clear
        result = np.zeros(self.masks[t].channels["A"].shape, bool)
        result[ys[shown], xs[shown]] = True
        return result


@dataclass
class CyclesShot:
    """Every render of one Cycles shot, per frame (see the module doc and generate.py)."""

    entry: ShotSpec
    folder: Path
    first_frame: int
    #: per frame: variant -> passes (:func:`read_render`); ``still`` only in the middle frame
    renders: list[dict[str, dict[str, np.ndarray]]]
    cameras: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.renders)

    @property
    def frame_numbers(self) -> list[int]:
        return [self.first_frame + i for i in range(len(self))]

    @property
    def window(self) -> Box:
        return Box.from_size(int(self.entry["width"]), int(self.entry["height"]))

    def rgb(self, index: int, variant: str) -> np.ndarray:
        """Variant ``variant``'s scene-linear RGB (H, W, 3) in frame ``index`` (premultiplied if transparent)."""
        rgb: np.ndarray = self.renders[index][variant]["Combined"][:, :, :3]
        return rgb

    def alpha(self, index: int, variant: str) -> np.ndarray:
        """The true coverage of the ``subject`` or the ``rig`` in frame ``index`` (holdout render), in [0, 1]."""
        coverage: np.ndarray = np.clip(self.renders[index][variant]["Combined"][:, :, 3], 0.0, 1.0)
        return coverage

    def aovs(self, index: int) -> dict[str, np.ndarray]:
        """The plate's AOV channels: Z, N.x/y/z, P.x/y/z, albedo.R/G/B (float32)."""
        passes = self.renders[index]["plate"]
        channels = {"Z": np.ascontiguousarray(passes["Depth"])}
        for prefix, name, suffixes in (
            ("N", "Normal", "xyz"),
            ("P", "Position", "xyz"),
            ("albedo", "Diffuse Color", "RGB"),
        ):
            for k, s in enumerate(suffixes):
                channels[f"{prefix}.{s}"] = np.ascontiguousarray(passes[name][:, :, k])
        return channels

    def plate(self, index: int, *, aovs: bool = True) -> Frame:
        """The plate (set and subject, no rig), with its AOVs."""
        extra = self.aovs(index) if aovs else {"Z": np.ascontiguousarray(self.renders[index]["plate"]["Depth"])}
        return _rgb_frame(self.rgb(index, "plate"), self.window, self.frame_numbers[index], extra)

    def cleanup(self) -> RenderedShot:
        """The cleanup view: the rig painted out of ``rigged`` should give ``plate`` (see the module doc)."""
        shot = RenderedShot(plates=[], cleans=[], masks=[], first_frame=self.first_frame, seed=int(self.entry["seed"]))
        for i, number in enumerate(self.frame_numbers):
            rig_depth = {"Z": np.ascontiguousarray(self.renders[i]["rigged"]["Depth"])}
            shot.plates.append(_rgb_frame(self.rgb(i, "rigged"), self.window, number, rig_depth))
            shot.cleans.append(self.plate(i, aovs=False))
            mask = roto_mask(self.alpha(i, "rig"))
            shot.masks.append(Frame({"A": mask}, self.window, self.window, frame_number=number))
            shot.positions.append(self.renders[i]["plate"]["Position"])
            shot.depths.append(self.renders[i]["plate"]["Depth"])
            shot.world_to_camera.append(np.array(self.cameras[i]["world_to_camera"], np.float64))
        shot.focal_px = float(self.cameras[0]["focal_px"])
        return shot

    def matte(self) -> MatteShot:
        """The matte view: pull the subject off ``clean``; replace the set with the second set."""
        plates, cleans, alphas, foregrounds, backgrounds, subject = [], [], [], [], [], []
        crosses = False
        for i, number in enumerate(self.frame_numbers):
            alpha = self.alpha(i, "subject")
            crosses = crosses or bool(alpha[:, 0].max() > 0 or alpha[:, -1].max() > 0)
            plates.append(self.plate(i, aovs=False))
            clean_depth = {"Z": np.ascontiguousarray(self.renders[i]["clean"]["Depth"])}
            cleans.append(_rgb_frame(self.rgb(i, "clean"), self.window, number, clean_depth))
            alphas.append(Frame({"A": alpha}, self.window, self.window, frame_number=number))
            fg = self.rgb(i, "subject")
            channels = {c: np.ascontiguousarray(fg[:, :, k]) for k, c in enumerate(("R", "G", "B"))}
            channels["A"] = alpha
            foregrounds.append(
                Frame(channels, self.window, self.window, frame_number=number, colour_space=COLOUR_SPACE)
            )
            backgrounds.append(_rgb_frame(self.rgb(i, "backdrop"), self.window, number))
            subject.append(np.array(self.cameras[i]["subject"], np.float64))
        return MatteShot(
            plates=plates, cleans=cleans, alphas=alphas, foregrounds=foregrounds, backgrounds=backgrounds,
            first_frame=self.first_frame, seed=int(self.entry["seed"]), crosses_side=crosses, subject=subject,
        )  # fmt: skip

    def grade(self) -> Grade:
        """The shot's "look": a CDL and saturation drawn from its seed, as the analytic relit shots draw theirs."""
        rng = np.random.default_rng(int(self.entry["seed"]) + 4242)
        return Grade(
            slope=tuple(float(v) for v in rng.uniform(0.8, 1.25, 3)),  # type: ignore[arg-type]
            offset=tuple(float(v) for v in rng.uniform(-0.01, 0.01, 3)),  # type: ignore[arg-type]
            power=tuple(float(v) for v in rng.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
            saturation=float(rng.uniform(0.75, 1.25)),
        )

    def relit(self) -> RelitShot:
        """The relight view: plates with AOVs; relit = the key light moved and the practical on; looks = the grade."""
        grade = self.grade()
        plates, relits, looks = [], [], []
        for i, number in enumerate(self.frame_numbers):
            plate = self.plate(i)
            extra = {c: a for c, a in plate.channels.items() if c not in ("R", "G", "B", "A")}
            plates.append(plate)
            relits.append(_rgb_frame(self.rgb(i, "relit"), self.window, number, extra))
            looks.append(_rgb_frame(apply_grade(self.rgb(i, "plate"), grade), self.window, number, extra))
        e = self.entry
        key = KeyLight(
            position=(float(e["key_moved"][0]), float(e["key_moved"][1]), float(e["key_moved"][2])),
            colour=(float(e["key_moved_colour"][0]), float(e["key_moved_colour"][1]), float(e["key_moved_colour"][2])),
            intensity=float(e["key_power"]),
            radius=1.5,  # the area light's size, metres
        )
        # The practical: a point light on the back wall at (x, height), metres; gain and spread
        # describe the analytic pool of light and have no meaning for a rendered lamp.
        practical = Practical(
            x=float(e["practical"][0]),
            y=float(e["practical"][2]),
            colour=(float(e["practical_colour"][0]), float(e["practical_colour"][1]), float(e["practical_colour"][2])),
            size=0.08,
            emission=float(e["practical_power"]),
            gain=0.0,
            spread=0.0,
        )
        return RelitShot(
            plates=plates,
            relits=relits,
            looks=looks,
            first_frame=self.first_frame,
            seed=int(e["seed"]),
            key_light=key,
            practical=practical,
            grade=grade,
        )


def load_cycles_shot(entry: ShotSpec, *, cache: Path = CACHE, threads: int = 2) -> CyclesShot:
    """Render (or find cached) the spec entry ``entry`` and load it: a :class:`CyclesShot`.

    ``entry`` is one element of :func:`bench.cycles.spec.load_set`'s list. Use ``.cleanup()``,
    ``.matte()`` or ``.relit()`` for the object each tool's evaluation takes.
    """
    folder = render_shot(entry, cache=cache, threads=threads)
    cameras = json.loads((folder / "cameras.json").read_text())
    first = int(entry["first_frame"])
    renders = []
    for number in range(first, first + int(entry["frames"])):
        # the AOVs are the plate's; of the other renders only the image and depth are kept (memory)
        renders.append(
            {
                v: read_render(folder / f"{v}.{number:04d}.exr", None if v == "plate" else ("Combined", "Depth"))
                for v in VARIANTS
                if number in variant_frames(entry, v)
            }
        )
    return CyclesShot(entry=entry, folder=folder, first_frame=first, renders=renders, cameras=cameras)
