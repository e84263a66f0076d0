"""Review proxies on disk: 8-bit display-referred PNG/JPEG stills (Pillow) and H.264 MP4 (PyAV).

Pixels come in as display-referred float (what :func:`plateforge.review.colour.to_display`
gives), are clipped to 0..1 and rounded to 8 bits. Every file is written under a temporary name
and renamed into place, so a reviewer never opens a half-written proxy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from plateforge import atomic
from plateforge.errors import UsageError
from plateforge.review.colour import require

__all__ = ["MOVIE_SUFFIXES", "STILL_SUFFIXES", "mime_type", "movie_available", "to_8bit", "write_movie", "write_still"]

#: Still formats by file suffix: Pillow's format name and the MIME type C2PA signs them as.
STILL_SUFFIXES = {".png": ("PNG", "image/png"), ".jpg": ("JPEG", "image/jpeg"), ".jpeg": ("JPEG", "image/jpeg")}
MOVIE_SUFFIXES = {".mp4": "video/mp4"}


def mime_type(path: str | os.PathLike[str]) -> str:
    """The MIME type of a proxy file, by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in STILL_SUFFIXES:
        return STILL_SUFFIXES[suffix][1]
    if suffix in MOVIE_SUFFIXES:
        return MOVIE_SUFFIXES[suffix]
    known = sorted({*STILL_SUFFIXES, *MOVIE_SUFFIXES})
    raise UsageError(f"proxy {os.fspath(path)!r}: unknown suffix {suffix or '(none)'!r}; use one of {known}")


def to_8bit(display: np.ndarray) -> np.ndarray:
    """Display-referred float (H, W, 3) as uint8, clipped to 0..1 and rounded."""
    levels: np.ndarray = np.round(np.clip(np.nan_to_num(display, nan=0.0), 0.0, 1.0) * 255.0)
    return levels.astype(np.uint8)


def write_still(path: str | os.PathLike[str], pixels: np.ndarray) -> Path:
    """``pixels`` (H, W, 3) uint8 as a PNG or JPEG, by the path's suffix, atomically."""
    mime_type(path)
    suffix = Path(path).suffix.lower()
    if suffix not in STILL_SUFFIXES:
        raise UsageError(f"{os.fspath(path)!r} is not a still image; use .png, .jpg or .jpeg")
    image_module = require("PIL.Image", "writing PNG/JPEG proxies")
    image = image_module.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    with atomic.atomic_path(path) as temp:
        options = {"quality": 95, "subsampling": 0} if STILL_SUFFIXES[suffix][0] == "JPEG" else {}
        image.save(temp, format=STILL_SUFFIXES[suffix][0], **options)
    return Path(path)


def movie_available() -> bool:
    """Whether MP4 proxies can be made here (PyAV is installed)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def write_movie(path: str | os.PathLike[str], frames: Sequence[np.ndarray], *, fps: int = 24) -> Path:
    """``frames`` (each (H, W, 3) uint8, one size) as an H.264 MP4, atomically. Odd sizes are
    padded by one edge pixel (4:2:0 video needs even ones)."""
    if Path(path).suffix.lower() not in MOVIE_SUFFIXES:
        raise UsageError(f"{os.fspath(path)!r} is not a movie; use .mp4")
    if not frames:
        raise UsageError(f"no frames for the movie {os.fspath(path)!r}")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise UsageError(f"the frames of {os.fspath(path)!r} differ in size: {sorted(shapes)}")
    av = require("av", "writing MP4 proxies")
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    with atomic.atomic_path(path) as temp, av.open(str(temp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16"}
        for pixels in frames:
            image = np.pad(np.ascontiguousarray(pixels, dtype=np.uint8), pad, mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
