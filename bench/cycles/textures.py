"""The photographs the Cycles sets wear, converted to plain RGB EXRs Blender can load.

The sources are the OpenEXR project's sample images in ``../shared/testdata/openexr-images``,
scene-linear. Blender 5.0 reads neither luminance/chroma files with subsampled chroma
(``Rec709_YC.exr``: "subsampling factors ... not compatible") nor the multi-view beachball, so
each photograph is decoded here (plateforge's EXR reader) and written as ``R, G, B`` half, still
scene-linear; negative values (the YC decode of saturated reds) are clipped at 0, since a
texture is a reflectance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from plateforge.exr import read_exr, write_exr
from plateforge.frames import Box, Frame

__all__ = ["PHOTOGRAPHS", "TESTDATA", "convert", "source_path"]

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO.parent / "shared" / "testdata" / "openexr-images"

#: Rec.709 luminance weights: how OpenEXR's RGBA/YCA interface builds Y from R, G, B.
_YW = (0.2126, 0.7152, 0.0722)


def _from_yc(frame: Frame) -> np.ndarray:
    """R, G, B from a luminance/chroma frame (Y full size; RY, BY possibly subsampled)."""
    y = frame.channels["Y"].astype(np.float32)
    height, width = y.shape

    def upsample(name: str) -> np.ndarray:
        if name not in frame.channels:
            return np.zeros_like(y)
        chroma = frame.channels[name].astype(np.float32)
        ry, rx = -(-height // chroma.shape[0]), -(-width // chroma.shape[1])
        full: np.ndarray = np.repeat(np.repeat(chroma, ry, axis=0), rx, axis=1)[:height, :width]
        return full

    r = (upsample("RY") + 1.0) * y
    b = (upsample("BY") + 1.0) * y
    g = (y - _YW[0] * r - _YW[2] * b) / _YW[1]
    rgb: np.ndarray = np.stack([r, g, b], axis=-1)
    return rgb


def _from_rgb(frame: Frame) -> np.ndarray:
    rgb: np.ndarray = frame.stack(("R", "G", "B")).astype(np.float32)
    return rgb


#: name -> (path under TESTDATA, decoder to scene-linear RGB)
PHOTOGRAPHS: dict[str, tuple[str, Callable[[Frame], np.ndarray]]] = {
    "flower": ("Chromaticities/Rec709_YC.exr", _from_yc),  # a colour photograph (luminance/chroma)
    "garden": ("LuminanceChroma/Garden.exr", _from_yc),  # a black-and-white photograph (Y only)
    "beachball": ("Beachball/singlepart.0001.exr", _from_rgb),  # a CG render, as set dressing
}


def source_path(name: str) -> Path:
    """The source EXR of photograph ``name``."""
    if name not in PHOTOGRAPHS:
        raise KeyError(f"unknown photograph {name!r}: expected one of {sorted(PHOTOGRAPHS)}")
    return TESTDATA / PHOTOGRAPHS[name][0]


def convert(name: str, folder: Path) -> Path:
    """Photograph ``name`` as a plain RGB half EXR under ``folder`` (named by the source's hash); its path."""
    source = source_path(name)
    if not source.is_file():
        raise FileNotFoundError(f"photograph {name!r}: expected the OpenEXR sample image at {source}")
    digest = hashlib.sha256(source.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:20]
    target = folder / f"{name}-{digest}.exr"
    if target.is_file():
        return target
    rgb = np.maximum(PHOTOGRAPHS[name][1](read_exr(source)), 0.0).astype(np.float16)
    height, width = rgb.shape[:2]
    window = Box.from_size(width, height)
    channels = {c: np.ascontiguousarray(rgb[:, :, k]) for k, c in enumerate(("R", "G", "B"))}
    folder.mkdir(parents=True, exist_ok=True)
    write_exr(str(target), Frame(channels, window, window))  # atomic: a temporary name, then renamed
    return target
