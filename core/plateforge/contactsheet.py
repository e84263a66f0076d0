"""Before/after contact sheets as PNG, for people to look at.

Scene-linear pixels are shown through the sRGB transfer function, clipped to [0, 1]: a viewing
transform for eyes, never data. The PNG writer is a few lines of zlib because the host side keeps
its dependencies to numpy, grpcio, protobuf and OpenEXR.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from plateforge import atomic

__all__ = ["contact_sheet", "to_display", "write_png"]


def to_display(linear: np.ndarray) -> np.ndarray:
    """HxWx3 scene-linear float -> HxWx3 uint8 sRGB."""
    x = np.clip(np.nan_to_num(linear.astype(np.float32), nan=0.0), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.asarray(np.round(srgb * 255.0), dtype=np.uint8)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], *, gap: int = 6, background: int = 32) -> np.ndarray:
    """Tiles of equal size (HxWx3 uint8) laid out in rows, separated by ``gap`` pixels."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    sheet = np.full(
        (len(rows) * height + (len(rows) + 1) * gap, columns * width + (columns + 1) * gap, 3), background, np.uint8
    )
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = gap + r * (height + gap), gap + c * (width + gap)
            sheet[y : y + height, x : x + width] = tile
    return sheet


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray, *, text: Mapping[str, str] | None = None) -> None:
    """Write HxWx3 uint8 as an 8-bit RGB PNG, atomically; ``text``: keyword -> Latin-1 text, as
    tEXt chunks (a reader finds in the picture what it was drawn from)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"write_png needs HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))  # filter type 0 per row
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"sRGB", b"\x00")
        + b"".join(_chunk(b"tEXt", f"{k}\x00{v}".encode("latin-1")) for k, v in (text or {}).items())
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )
    atomic.write_bytes(path, png)
