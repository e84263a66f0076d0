"""The synthetic daily (plateforge.shots.synthetic) and the metrics measured on it (plateforge.metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.frames import Box, Frame
from plateforge.shots.synthetic import Shot, make_shot, write_shot


@pytest.fixture(scope="module")
def shot() -> Shot:
    return make_shot()


def _bits(pixels: np.ndarray) -> np.ndarray:
    """The samples as unsigned integers, so comparisons are bit for bit (and NaN-proof)."""
    return pixels.view(np.uint16 if pixels.dtype == np.float16 else np.uint32)


def _rgb(frame: Frame) -> np.ndarray:
    return frame.stack(("R", "G", "B"))


def test_same_seed_same_shot_other_seed_other_shot() -> None:
    a, b = make_shot(width=96, height=64, frames=3, seed=5), make_shot(width=96, height=64, frames=3, seed=5)
    c = make_shot(width=96, height=64, frames=3, seed=6)
    for kind in ("plates", "cleans", "masks"):
        for fa, fb in zip(getattr(a, kind), getattr(b, kind), strict=True):
            assert fa.channels.keys() == fb.channels.keys()
            for name in fa.channels:
                assert fa.channels[name].tobytes() == fb.channels[name].tobytes(), (kind, name)
    assert not np.array_equal(_rgb(a.cleans[0]), _rgb(c.cleans[0]))


def test_frames_channels_dtypes_and_windows(shot: Shot) -> None:
    assert len(shot) == 24
    assert shot.frame_numbers == list(range(1001, 1025))
    window = Box(0, 0, 479, 269)
    for number, plate, clean, mask in zip(shot.frame_numbers, shot.plates, shot.cleans, shot.masks, strict=True):
        for frame in (plate, clean):
            assert list(frame.channels) == ["R", "G", "B", "A", "Z"]
            assert all(frame.channels[c].dtype == np.float16 for c in "RGBA")
            assert frame.channels["Z"].dtype == np.float32
            assert bool(np.all(frame.channels["A"] == 1))
        assert list(mask.channels) == ["A"] and mask.channels["A"].dtype == np.float32
        for frame in (plate, clean, mask):
            assert frame.frame_number == number
            assert frame.data_window == window and frame.display_window == window
            assert frame.channels[next(iter(frame.channels))].shape == (270, 480)
            assert not frame.non_finite_channels()
        assert shot.frame(number).plate is plate
    with pytest.raises(IndexError):
        shot.frame(1025)


def test_clean_is_the_plate_wherever_the_mask_is_zero(shot: Shot) -> None:
    for plate, clean, mask in zip(shot.plates, shot.cleans, shot.masks, strict=True):
        m = mask.channels["A"]
        changed = np.zeros(m.shape, bool)
        for name in plate.channels:
            changed |= _bits(plate.channels[name]) != _bits(clean.channels[name])
        assert not bool(np.any(changed & (m == 0))), f"{plate.label()}: plate differs from clean outside the mask"
        assert changed.sum() > 500, f"{plate.label()}: the rig is missing"
        assert float(m.min()) >= 0.0 and float(m.max()) == 1.0
        assert bool(np.any((m > 0) & (m < 1))), "the mask should have a soft edge"
        # The roto is loose, like an artist's: most of it covers clean background.
        assert (m > 0).sum() > 1.5 * changed.sum()


def test_scene_linear_values_with_a_few_highlights(shot: Shot) -> None:
    rgb = np.concatenate([_rgb(c) for c in shot.cleans[::6]])
    low, median, high = np.percentile(rgb, [1, 50, 99])
    assert 0.01 < low < 0.08 and 0.08 < median < 0.5 and 0.5 < high < 1.6
    assert 2.5 < float(rgb.max()) < 4.5
    assert (rgb > 1.5).mean() < 0.005


def test_the_camera_moves_and_the_set_is_textured(shot: Shot) -> None:
    first, second = _rgb(shot.cleans[0]), _rgb(shot.cleans[1])
    assert np.abs(first - second).mean() > 0.02
    # Structure at several scales: differences between neighbouring pixels and 8 pixels apart.
    luma = first.mean(axis=2)
    assert np.abs(np.diff(luma, axis=1)).mean() > 0.01
    assert np.abs(luma[:, 8:] - luma[:, :-8]).mean() > 0.03
    assert not np.allclose(shot.cameras[0], shot.cameras[-1])


def test_neighbours_reveal_most_of_the_rig_but_not_all(shot: Shot) -> None:
    fractions = []
    for number in shot.frame_numbers[::3]:
        masked = shot.masks[shot.index(number)].channels["A"] > 0
        near, anywhere = shot.revealed(number, 2), shot.revealed(number)
        assert not bool(np.any(near & ~masked)) and not bool(np.any(near & ~anywhere))
        fractions.append(near.sum() / masked.sum())
        # The tape cross on the set is never seen: spatial inpainting has work in every frame.
        assert (masked & ~anywhere).sum() > 150
    assert np.mean(fractions) > 0.8 and min(fractions) > 0.7


def test_write_shot(tmp_path: Path) -> None:
    exr = pytest.importorskip("plateforge.exr")
    small = make_shot(width=64, height=40, frames=2, first_frame=99, seed=1)
    patterns = write_shot(small, tmp_path / "daily")
    assert patterns == {name: str(tmp_path / "daily" / f"{name}.####.exr") for name in ("plate", "mask", "clean")}
    for name, frames in (("plate", small.plates), ("mask", small.masks), ("clean", small.cleans)):
        for number, frame in zip((99, 100), frames, strict=True):
            path = tmp_path / "daily" / f"{name}.{number:04d}.exr"
            back = exr.read_exr(path)
            assert back.data_window == frame.data_window
            for channel, pixels in frame.channels.items():
                assert back.channels[channel].dtype == pixels.dtype
                assert back.channels[channel].tobytes() == pixels.tobytes(), (path, channel)
