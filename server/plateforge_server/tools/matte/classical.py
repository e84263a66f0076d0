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
4. **Foreground**, solved from the compositing equation ``plate = fg + (1 - alpha) * clean``, and
   **signed**: ``fg = plate - (1 - alpha) * clean``, not clamped. A subject changes the light on
   the set around it: its shadow takes light away (a negative foreground), its bounce adds some.
   That light is the subject's and belongs in the comp, so the foreground carries it as a signed
   premultiplied layer: under the subject (alpha > 0) in the plain unmix above, and where the key
   sees no subject (alpha 0) as the plate's difference from the clean plate, ``plate - clean``,
   with grain taken out: the two passes carry independent grain, so the difference is kept only
   where it stands out of it, weighted by a non-negative garrote ``max(0, 1 - t^2 / |s|^2)`` of
   the difference ``s`` blurred by 1.5 pixels (a shadow is smooth, grain is not), ``t`` four
   times the blurred grain this pair of plates shows there (measured on the frame, robustly,
   where alpha is 0, in proportion to the square root of the clean plate's light, as film grain
   grows). A shadow or bounce passes as the plain difference, grain becomes exactly 0, and on a
   grain-free pair the layer is the exact difference. (Clamping the foreground to ``[0, plate]``, as this tool did,
   threw the shadow and bounce away: the composite lost 4 dB against the plain unmix on a Cycles
   render, issue 16.) Non-finite plate pixels give a 0 foreground, so every output is finite.
5. **Composite** ``fg + (1 - alpha) * background`` when a new ``background`` is given: the
   standard premultiplied "over", so the shadow and bounce land on the new background as they
   fell on the old (an additive layer: what the subject did to the set is added to the new set).

Outputs: ``alpha`` (one channel ``A``, float), ``foreground`` (the plate's channels with R, G, B
replaced by the signed premultiplied foreground (negative in the subject's shadow, non-zero where
A is 0 only where the subject's shadow or bounce falls) and A by alpha: every other channel, Z and AOVs, passes
through) and, with a ``background``, ``composite`` (the background's channels with R, G, B
replaced by the composite and A by ``alpha + (1 - alpha) * background A``; its other channels pass
through). R, G, B keep each input channel's own pixel type; alpha is float.

:func:`key`, :func:`solve_foreground` and :func:`composite_over` are plain numpy functions: the
learned matte (:mod:`plateforge_server.tools.learned`) and the evaluation
(:mod:`plateforge_server.tools.matte.evaluation`) call them, so all methods share one foreground
solve and one composite.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge_server.tools.base import ToolCall, cast_like, passthrough_channels

__all__ = [
    "INFO",
    "KeySettings",
    "composite_over",
    "key",
    "load",
    "matte_outputs",
    "run",
    "set_light",
    "solve_foreground",
]

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
            "The subject's premultiplied colour in R, G, B, signed: its shadow (negative) and bounce (positive) on "
            "the set ride with it, also where A is 0; its alpha in A; other plate channels pass through.",
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


#: The garrote's threshold, in standard deviations of the blurred plate-minus-clean grain (norm over
#: R, G, B): grain passes it about once in a thousand pixels, and is shrunk to near 0 when it does.
_GRAIN_SIGMAS = 4.0
#: The clean plate's light below which grain is taken as this level's (film grain ~ sqrt(light)).
_GRAIN_FLOOR = 1e-3
#: Gaussian sigma (pixels) of the difference on which the shadow-or-grain decision is taken.
_SET_LIGHT_BLUR = 1.5


def _grain_scale(difference: np.ndarray, clean: np.ndarray, where: np.ndarray) -> float:
    """The grain of ``plate - clean`` per unit ``sqrt(clean)``, robustly (median absolute
    deviation, so a shadow covering less than half of ``where`` does not count as grain)."""
    if not where.any():
        return 0.0
    normalised = difference[where] / np.sqrt(np.maximum(clean[where], _GRAIN_FLOOR))
    normalised = normalised[np.isfinite(normalised)]
    if normalised.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(normalised - np.median(normalised))))


def set_light(plate: np.ndarray, clean: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The subject's shadow and bounce where the key sees no subject (``outside``, ``(H, W)``
    bool): ``plate - clean`` where it stands out of the grain (step 4), ``(H, W, 3)`` float32,
    0 elsewhere."""
    difference = (plate - clean).astype(np.float32)
    # Decide on the difference blurred (shadows and bounce are smooth, grain is not: the blur cuts
    # grain about fourfold and leaves them), keep the plate's own difference where it is decided.
    smooth = _blur(difference, _SET_LIGHT_BLUR)
    scale = _grain_scale(smooth, clean, outside)
    # The grain's expected squared norm over R, G, B grows with the clean plate's light.
    noise = np.float32(scale * scale) * np.maximum(clean, _GRAIN_FLOOR).sum(axis=2)
    threshold = np.float32(_GRAIN_SIGMAS * _GRAIN_SIGMAS) * noise
    energy = (smooth * smooth).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(energy > threshold, 1.0 - threshold / energy, 0.0)
    layer: np.ndarray = np.where(outside[:, :, None], difference * keep[:, :, None], 0.0).astype(np.float32)
    return layer


def solve_foreground(plate: np.ndarray, clean: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Step 4: the signed premultiplied foreground ``(H, W, 3)`` float32 from ``plate = fg + (1 -
    alpha) * clean``: the plain unmix where ``alpha > 0``, the subject's shadow and bounce
    (:func:`set_light`) where it is 0; finite (0 where the plate or clean plate is not)."""
    plate = np.asarray(plate, np.float32)
    clean = np.asarray(clean, np.float32)
    weight = np.asarray(alpha, np.float32)[:, :, None]
    finite = np.isfinite(plate).all(axis=2) & np.isfinite(clean).all(axis=2) & np.isfinite(weight[:, :, 0])
    plate = np.where(finite[:, :, None], plate, 0.0).astype(np.float32)
    clean = np.where(finite[:, :, None], clean, 0.0).astype(np.float32)
    outside = (np.nan_to_num(weight[:, :, 0], nan=0.0) <= 0) & finite
    unmixed = plate - (1.0 - weight) * clean
    solved = np.where(outside[:, :, None], set_light(plate, clean, outside), unmixed)
    result: np.ndarray = np.where(finite[:, :, None], solved, 0.0).astype(np.float32)
    return result


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
