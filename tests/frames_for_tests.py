"""Frames for tests, and the one comparison every exactness test uses."""

from __future__ import annotations

import numpy as np

from plateforge.frames import Box, Frame


def mixed_frame(number: int | None = 1001) -> Frame:
    """A small frame exercising everything a frame can hold: half, float and uint channels, a
    subsampled channel, an offset data window, a display window, pixel aspect, attributes."""
    rng = np.random.default_rng(3)
    return Frame(
        channels={
            "R": rng.standard_normal((5, 7)).astype(np.float16),
            "Z": rng.standard_normal((5, 7)).astype(np.float32),
            "id": rng.integers(0, 2**32 - 1, (5, 7), dtype=np.uint32),
            "BY": rng.standard_normal((2, 3)).astype(np.float16),
        },
        data_window=Box(-3, 10, 3, 14),
        display_window=Box(0, 0, 99, 49),
        frame_number=number,
        colour_space="lin_rec709",
        attributes={"a": "b"},
        sampling={"BY": (2, 2)},
        pixel_aspect=2.0,
    )


def bits(pixels: np.ndarray) -> np.ndarray:
    """Samples as unsigned integers, so comparisons are bit for bit (NaN payloads included)."""
    return pixels.view(np.uint16 if pixels.itemsize == 2 else np.uint32)


def assert_same_frame(got: Frame, want: Frame, *, attributes: bool = True) -> None:
    """Bit-identical channels in the same order and types, and the same frame metadata.
    ``attributes=False`` for results, whose headers gain a provenance record."""
    assert list(got.channels) == list(want.channels)
    for name, pixels in want.channels.items():
        assert got.channels[name].dtype == pixels.dtype, name
        assert np.array_equal(bits(got.channels[name]), bits(pixels)), f"channel {name} differs"
    assert (got.data_window, got.display_window) == (want.data_window, want.display_window)
    assert (got.frame_number, got.colour_space) == (want.frame_number, want.colour_space)
    assert (got.sampling, got.pixel_aspect) == (want.sampling, want.pixel_aspect)
    if attributes:
        assert got.attributes == want.attributes
