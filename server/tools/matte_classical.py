"""matte-classical: pulls a matte by clean-plate difference keying, and replaces the background.

The classical difference key a compositor sets up when a clean pass exists, with no learned weights:

1. **Difference.** Per pixel, the colour distance between plate and clean plate, in scene-linear
   (the values a comp composites), scaled by ``1 / (luma(clean) + 0.1)``: a subject is judged
   against how bright the set behind it is, so a dark set does not hide it and grain on a bright
   set (it grows with the signal) does not pass for it. The distance is taken after a small
   Gaussian blur of both plates (``denoise`` pixels) so grain, which the two passes do not share,
   averages out, while edges wider than the blur survive.
2. **Key.** ``alpha = clip((difference - threshold) / softness, 0, 1)``: below ``threshold`` is
   background, ``softness`` above it is fully subject, in between is the edge.
3. **Clean-up.** Holes of up to ``fill_holes`` pixels inside the subject are closed (a subject's
   colour that happens to match the set there), and specks smaller than ``despeckle`` pixels are
   dropped (grain, a flicker of the set): OpenCV morphology and connected components.
4. **Foreground**, solved honestly from the compositing equation ``plate = fg + (1 - alpha) * clean``:
   ``fg = plate - (1 - alpha) * clean``, clipped to ``[0, plate]`` per channel where the plate is
   positive (a premultiplied colour is never negative, and a subject cannot add more than the
   plate shows); 0 where alpha is 0.
5. **Composite** ``fg + (1 - alpha) * background`` when a new ``background`` is given.

Outputs: ``alpha`` (one channel ``A``, float), ``foreground`` (the plate's channels with R, G, B
replaced by the premultiplied foreground and A by alpha: every other channel, Z and AOVs, passes
through) and, with a ``background``, ``composite`` (the background's channels with R, G, B
replaced by the composite and A by ``alpha + (1 - alpha) * background A``; its other channels pass
through). R, G, B keep each input channel's own pixel type; alpha is float.

:func:`key`, :func:`solve_foreground` and :func:`composite_over` are plain numpy functions: the
learned matte (:mod:`plateforge.server.tools.learned`) and the evaluation
(:mod:`plateforge.server.evaluation.matte`) call them, so all methods share one foreground
solve and one composite.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge.server.tools.base import ToolCall, cast_like, passthrough_channels

__all__ = ["INFO", "KeySettings", "composite_over", "key", "load", "matte_outputs", "run", "solve_foreground"]

INFO = ModelInfo(
    name="matte-classical",
    version="1",
    tool="matte",
    description=(
        "Pulls the subject's alpha by clean-plate difference keying, solves its premultiplied foreground "
        "from the clean plate, and composites it over a new background when one is given."
    ),
    inputs=(
        InputSpec("plate", "The plate: the subject over the set, R, G, B scene-linear.", channels=("R", "G", "B")),
        InputSpec(
            "clean_plate",
            "The set without the subject, same camera and size as the plate, R, G, B scene-linear.",
            channels=("R", "G", "B"),
        ),
        InputSpec(
            "background",
            "Optional new background to composite the subject over, R, G, B scene-linear.",
            required=False,
            channels=("R", "G", "B"),
        ),
    ),
    outputs=(
        OutputSpec("alpha", "The subject's alpha in [0, 1], one channel A (float).", ("A",)),
        OutputSpec(
            "foreground",
            "The subject's premultiplied colour in R, G, B and its alpha in A; other plate channels pass through.",
            ("R", "G", "B", "A"),
        ),
        OutputSpec(
            "composite",
            "With a background: the foreground over it (R, G, B, A); its other channels pass through.",
            ("R", "G", "B", "A"),
        ),
    ),
    parameters=(
        ParamSpec(
            "threshold",
            "float",
            0.06,
            label="Threshold",
            description="Relative colour difference below which a pixel is background.",
            minimum=0.0,
            maximum=10.0,
        ),
        ParamSpec(
            "softness",
            "float",
            0.5,
            label="Softness",
            description="Relative difference over which alpha rises from 0 to 1 above the threshold.",
            minimum=1e-4,
            maximum=10.0,
        ),
        ParamSpec(
            "denoise",
            "float",
            0.5,
            label="Denoise",
            description="Gaussian sigma in pixels applied to both plates before differencing (0: off).",
            minimum=0.0,
            maximum=8.0,
        ),
        ParamSpec(
            "fill_holes",
            "int",
            2,
            label="Fill holes",
            description="Close holes in the matte up to this radius in pixels (0: off).",
            minimum=0,
            maximum=32,
        ),
        ParamSpec(
            "despeckle",
            "int",
            12,
            label="Despeckle",
            description="Drop isolated specks of the matte smaller than this many pixels (0: off).",
            minimum=0,
            maximum=100000,
        ),
    ),
    padding=48,
    provenance="no learned weights; clean-plate difference key with OpenCV morphology",
)

_RGB = ("R", "G", "B")
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
#: Added to the clean plate's luminance before dividing by it: below this the key is absolute.
_FLOOR = 0.1


@dataclass(frozen=True)
class KeySettings:
    """The key's parameters, as :data:`INFO` declares them (defaults included)."""

    threshold: float = 0.06
    softness: float = 0.5
    denoise: float = 0.5
    fill_holes: int = 2
    despeckle: int = 12


@dataclass(frozen=True)
class _State:
    """Nothing to load: OpenCV only."""

    device: str


def load(*, device: str) -> _State:
    return _State(device=device)


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return rgb
    blurred: np.ndarray = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return blurred


def key(plate: np.ndarray, clean: np.ndarray, settings: KeySettings = KeySettings()) -> np.ndarray:
    """Steps 1 to 3: the alpha ``(H, W)`` float32 in [0, 1] from ``plate`` and ``clean`` ``(H, W, 3)``."""
    a = _blur(np.ascontiguousarray(plate, np.float32), settings.denoise)
    b = _blur(np.ascontiguousarray(clean, np.float32), settings.denoise)
    distance = np.sqrt(((a - b) ** 2).sum(axis=2)) / (np.maximum(b @ _LUMA, 0.0) + np.float32(_FLOOR))
    ramp = (distance - np.float32(settings.threshold)) / np.float32(settings.softness)
    alpha: np.ndarray = np.clip(ramp, 0.0, 1.0).astype(np.float32)
    if settings.fill_holes > 0:
        side = 2 * settings.fill_holes + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        # Closing raises a hole to its surroundings; it never lowers the matte anywhere.
        closed: np.ndarray = cv2.morphologyEx(alpha, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
        alpha = np.maximum(alpha, closed)
    if settings.despeckle > 0:
        solid = (alpha > 0).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < settings.despeckle)
        small = small[small > 0]  # label 0 is the background
        if small.size and count > 1:
            alpha[np.isin(labels, small)] = 0.0
    return alpha


def solve_foreground(plate: np.ndarray, clean: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Step 4: the premultiplied foreground ``(H, W, 3)`` float32 from ``plate = fg + (1 - alpha) * clean``."""
    weight = alpha[:, :, None].astype(np.float32)
    fg = plate - (1.0 - weight) * clean
    upper = np.maximum(plate, 0.0)
    solved: np.ndarray = np.where(weight > 0, np.clip(fg, 0.0, upper), 0.0).astype(np.float32)
    return solved


def composite_over(fg: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Step 5: ``fg + (1 - alpha) * background``, ``(H, W, 3)`` float32."""
    result: np.ndarray = (fg + (1.0 - alpha[:, :, None]) * background).astype(np.float32)
    return result


def matte_outputs(call: ToolCall, alpha: np.ndarray) -> dict[str, Frame]:
    """Steps 4 and 5 as frames, from the call's plate, clean plate and (optional) background
    and the ``alpha`` a key gave; the learned matte writes its outputs through this too."""
    plate = call.frame("plate")
    clean = call.frame("clean_plate", plate.frame_number)
    plate_rgb = plate.stack(_RGB)
    fg = solve_foreground(plate_rgb, clean.stack(_RGB), alpha)
    produced = {name: cast_like(fg[:, :, k], plate.channels[name]) for k, name in enumerate(_RGB)}
    produced["A"] = alpha
    outputs = {
        "alpha": Frame({"A": alpha}, plate.data_window, plate.display_window, colour_space=plate.colour_space),
        "foreground": passthrough_channels(plate, produced),
    }
    if call.has("background"):
        background = call.frame("background", plate.frame_number)
        back_rgb = background.stack(_RGB)
        over = composite_over(fg, alpha, back_rgb)
        merged = {name: cast_like(over[:, :, k], background.channels[name]) for k, name in enumerate(_RGB)}
        back_alpha = background.channels.get("A")
        below = back_alpha.astype(np.float32) if back_alpha is not None else np.ones_like(alpha)
        merged["A"] = (alpha + (1.0 - alpha) * below).astype(np.float32)
        outputs["composite"] = passthrough_channels(background, merged)
    return outputs


def settings_of(call: ToolCall) -> KeySettings:
    """The call's resolved parameters as :class:`KeySettings`."""
    defaults = KeySettings()
    return KeySettings(
        threshold=float(call.params.get("threshold", defaults.threshold)),
        softness=float(call.params.get("softness", defaults.softness)),
        denoise=float(call.params.get("denoise", defaults.denoise)),
        fill_holes=int(call.params.get("fill_holes", defaults.fill_holes)),
        despeckle=int(call.params.get("despeckle", defaults.despeckle)),
    )


def run(state: _State, call: ToolCall) -> dict[str, Frame]:
    call.check_cancelled()
    plate = call.frame("plate")
    clean = call.frame("clean_plate", plate.frame_number)
    alpha = key(plate.stack(_RGB), clean.stack(_RGB), settings_of(call))
    call.check_cancelled()
    return matte_outputs(call, alpha)
