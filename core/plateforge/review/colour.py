"""OpenColorIO transforms: plates into the config's scene-linear space and back
(``--input-colorspace``), and scene-linear frames to a display for review proxies.

The models work in scene-linear light. A plate delivered in a display or log encoding (sRGB,
ARRI LogC, S-Log3 ...) is converted to the config's ``scene_linear`` role before it is sent and
the outputs are converted back to the plate's space after, so a compositor gets frames in the
encoding they gave. The config is the one named (a file or an ``ocio://`` built-in), else
``$OCIO``, else OCIO's built-in ACES studio config.

PyOpenColorIO comes with the ``review`` extra and is imported only when a transform is asked
for: the host package imports without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from plateforge.errors import ColourError, UsageError
from plateforge.frames import Frame

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DISPLAY",
    "RGB",
    "ColourConversion",
    "config_name",
    "load_config",
    "plate_to_linear",
    "require",
    "to_display",
]

#: OCIO's built-in ACES studio config (cameras, displays, ACES 2 views), always the newest one
#: the installed OpenColorIO ships.
DEFAULT_CONFIG = "ocio://studio-config-latest"
#: The display review proxies are made for unless told otherwise.
DEFAULT_DISPLAY = "sRGB - Display"
#: The channels a colour transform applies to; others (alpha, mattes, depth) pass unchanged.
RGB = ("R", "G", "B")

_EXTRA_HINT = "pip install 'plateforge[review]'"


def require(module: str, purpose: str) -> Any:
    """Import an optional module of the ``review`` extra, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UsageError(
            f"{purpose} needs the Python module {module!r} of the review extra ({_EXTRA_HINT}): {error}"
        ) from None


def _ocio() -> Any:
    return require("PyOpenColorIO", "OpenColorIO colour management")


def config_name(config: str | None) -> str:
    """The config a command uses: the one named, else ``$OCIO``, else :data:`DEFAULT_CONFIG`."""
    return config or os.environ.get("OCIO") or DEFAULT_CONFIG


@lru_cache(maxsize=8)
def load_config(config: str | None = None) -> Any:
    """The ``PyOpenColorIO.Config`` named by ``config`` (see :func:`config_name`)."""
    ocio = _ocio()
    name = config_name(config)
    try:
        return ocio.Config.CreateFromFile(name)
    except Exception as error:  # OCIO raises its own Exception subclass for every failure
        raise ColourError(f"OpenColorIO config {name!r} cannot be loaded: {error}") from None


def _names(items: Iterable[Any]) -> list[str]:
    return [str(item) for item in items]


def _colorspace(cfg: Any, name: str, what: str) -> str:
    found = cfg.getColorSpace(name)
    if found is None:
        known = _names(cs.getName() for cs in cfg.getColorSpaces())
        raise ColourError(
            f"{what} {name!r} is not a colour space of the OpenColorIO config {cfg.getName()!r}; "
            f"it defines {', '.join(known)}"
        )
    return str(found.getName())


def _scene_linear(cfg: Any) -> str:
    ocio = _ocio()
    found = cfg.getColorSpace(ocio.ROLE_SCENE_LINEAR)
    if found is None:
        raise ColourError(f"the OpenColorIO config {cfg.getName()!r} has no scene_linear role")
    return str(found.getName())


def _apply(processor: Any, rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (..., 3) through an OCIO processor, as a new float32 array."""
    pixels: np.ndarray = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    if pixels.size:
        processor.getDefaultCPUProcessor().applyRGB(pixels)
    return pixels


def _rgb_planes(frame: Frame, what: str) -> np.ndarray | None:
    """The frame's R, G, B as one float32 (H, W, 3) array; None when it has none of them."""
    present = [c for c in RGB if c in frame.channels]
    if not present:
        return None
    if len(present) < 3:
        raise ColourError(f"{what} has channel(s) {present} but not all of R, G, B; a colour space needs all three")
    planes = [frame.channels[c] for c in RGB]
    if len({p.shape for p in planes}) > 1:
        raise ColourError(f"{what}: R, G and B are sampled differently (a luminance/chroma file); convert it first")
    stacked = np.stack(planes, axis=-1)
    if np.issubdtype(stacked.dtype, np.integer):
        # Integer samples are code values: their encoding's full range maps to 0..1.
        scaled: np.ndarray = stacked.astype(np.float64) / np.iinfo(stacked.dtype).max
        return scaled.astype(np.float32)
    return stacked.astype(np.float32)


@dataclass(frozen=True)
class ColourConversion:
    """A plate's colour space and the config's scene-linear space, both ways.

    :meth:`to_linear` turns an input frame's R, G, B into scene-linear float32; :meth:`from_linear`
    turns an output frame's R, G, B back into the plate's space, in the output's own pixel type.
    Frames without R, G, B (mattes, masks) pass unchanged."""

    colorspace: str
    scene_linear: str
    config: str

    @classmethod
    def create(cls, *, colorspace: str, config: str | None = None) -> ColourConversion:
        cfg = load_config(config)
        return cls(
            colorspace=_colorspace(cfg, colorspace, "--input-colorspace"),
            scene_linear=_scene_linear(cfg),
            config=config_name(config),
        )

    def _processor(self, source: str, destination: str) -> Any:
        try:
            return load_config(self.config).getProcessor(source, destination)
        except Exception as error:
            raise ColourError(f"OpenColorIO cannot convert {source!r} to {destination!r}: {error}") from None

    def to_linear(self, frame: Frame, *, what: str) -> Frame:
        rgb = _rgb_planes(frame, what)
        if rgb is None:
            return frame
        linear = _apply(self._processor(self.colorspace, self.scene_linear), rgb)
        channels = {**frame.channels, **{c: linear[..., i] for i, c in enumerate(RGB)}}
        return frame.replace(channels=channels, colour_space=self.scene_linear)

    def from_linear(self, frame: Frame, *, what: str) -> Frame:
        rgb = _rgb_planes(frame, what)
        if rgb is None:
            return frame
        encoded = _apply(self._processor(self.scene_linear, self.colorspace), rgb)
        channels = dict(frame.channels)
        for i, c in enumerate(RGB):
            dtype = frame.channels[c].dtype
            channels[c] = encoded[..., i].astype(dtype if dtype.kind == "f" else np.float32)
        return frame.replace(channels=channels, colour_space=self.colorspace)

    def provenance(self) -> dict[str, str]:
        """What an output records of the conversion (``plateforge/inputColorspace`` ...)."""
        return {"inputColorspace": self.colorspace, "sceneLinear": self.scene_linear, "ocioConfig": self.config}


def plate_to_linear(frame: Frame, colour: ColourConversion | None, *, what: str) -> Frame:
    """An input frame with its R, G, B in scene-linear light. Integer R, G, B are code values of
    some encoding (8-bit-style video levels, not light): without a colour space nothing says how
    to decode them, so they are refused rather than sent as if they were linear."""
    if colour is not None:
        return colour.to_linear(frame, what=what)
    coded = [c for c in ("R", "G", "B") if c in frame.channels and frame.channels[c].dtype.kind in "iu"]
    if coded:
        kind = str(frame.channels[coded[0]].dtype)
        raise UsageError(
            f"{what}: channel(s) {coded} hold integer code values ({kind}), not scene-linear light; "
            "give the plate's colour space with --input-colorspace NAME (an OpenColorIO colour space, "
            "e.g. 'sRGB Encoded Rec.709 (sRGB)')"
        )
    return frame


def to_display(
    rgb: np.ndarray, *, config: str | None = None, colorspace: str | None = None, display: str = "", view: str = ""
) -> tuple[np.ndarray, dict[str, str]]:
    """``rgb`` (H, W, 3) in ``colorspace`` (default: the config's scene_linear) through the
    config's display/view transform: display-referred float32, and the names used."""
    ocio = _ocio()
    cfg = load_config(config)
    source = _colorspace(cfg, colorspace, "--colorspace") if colorspace else _scene_linear(cfg)
    displays = _names(cfg.getDisplays())
    display = display or (DEFAULT_DISPLAY if DEFAULT_DISPLAY in displays else str(cfg.getDefaultDisplay()))
    if display not in displays:
        raise ColourError(f"--display {display!r} is not a display of {cfg.getName()!r}; it has {', '.join(displays)}")
    views = _names(cfg.getViews(display))
    view = view or str(cfg.getDefaultView(display))
    if view not in views:
        raise ColourError(f"--view {view!r} is not a view of display {display!r}; it has {', '.join(views)}")
    transform = ocio.DisplayViewTransform(src=source, display=display, view=view)
    try:
        processor = cfg.getProcessor(transform)
    except Exception as error:
        raise ColourError(
            f"OpenColorIO cannot make the {display!r} / {view!r} transform from {source!r}: {error}"
        ) from None
    shown = _apply(processor, np.nan_to_num(rgb, nan=0.0, posinf=65504.0, neginf=-65504.0))
    used = {"ocioConfig": config_name(config), "colorspace": source, "display": display, "view": view}
    return shown, used
