"""The relit/look ground-truth generator (plateforge.shots.relit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import read_exr
from plateforge.shots.relit import AOV_CHANNELS, RelitShot, apply_grade, make_relit_shot, write_relit_shot
from plateforge.shots.synthetic import make_shot

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def shot() -> RelitShot:
    return make_relit_shot(width=160, height=96, frames=6, seed=2)


def _fit_affine(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    design = np.concatenate([before.reshape(-1, 3), np.ones((before[..., 0].size, 1))], axis=1).astype(np.float64)
    matrix, *_ = np.linalg.lstsq(design, after.reshape(-1, 3).astype(np.float64), rcond=None)
    fitted: np.ndarray = (design @ matrix).reshape(after.shape)
    return fitted


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a = make_relit_shot(width=64, height=48, frames=2, seed=4)
    b = make_relit_shot(width=64, height=48, frames=2, seed=4)
    c = make_relit_shot(width=64, height=48, frames=2, seed=5)
    for kind in ("plates", "relits", "looks"):
        for fa, fb in zip(getattr(a, kind), getattr(b, kind), strict=True):
            for name in fa.channels:
                assert fa.channels[name].tobytes() == fb.channels[name].tobytes(), (kind, name)
    assert not np.array_equal(a.relits[0].stack(RGB), c.relits[0].stack(RGB))


def test_channels_types_and_frame_numbers(shot: RelitShot) -> None:
    assert len(shot) == 6 and shot.frame_numbers == list(range(1001, 1007))
    for frames in (shot.plates, shot.relits, shot.looks):
        for number, frame in zip(shot.frame_numbers, frames, strict=True):
            assert list(frame.channels) == ["R", "G", "B", "A", "Z", *AOV_CHANNELS]
            assert frame.frame_number == number and (frame.width, frame.height) == (160, 96)
            assert all(frame.channels[c].dtype == np.float16 for c in ("R", "G", "B", "A"))
            assert all(frame.channels[c].dtype == np.float32 for c in ("Z", *AOV_CHANNELS))
            assert np.isfinite(frame.stack(list(frame.channels))).all()
    # Relit and graded frames carry the plate's geometry unchanged.
    for plate, relit in zip(shot.plates, shot.relits, strict=True):
        for name in ("A", "Z", *AOV_CHANNELS):
            assert relit.channels[name].tobytes() == plate.channels[name].tobytes()


def test_normals_are_unit_and_face_the_camera(shot: RelitShot) -> None:
    normal = shot.plates[3].stack(AOV_CHANNELS[:3])
    np.testing.assert_allclose(np.linalg.norm(normal, axis=2), 1.0, atol=1e-5)
    assert (normal[..., 2] < 0).all()
    assert normal[..., 0].std() > 0.05  # the relief has real slopes, not a flat wall


def test_the_set_is_make_shots_set_where_the_rig_and_the_fixture_are_not(shot: RelitShot) -> None:
    reference = make_shot(width=160, height=96, frames=6, seed=2)
    for k in range(len(shot)):
        clear = reference.masks[k].channels["A"] == 0
        same = shot.plates[k].stack(RGB) == reference.cleans[k].stack(RGB)
        # Only the practical's fixture (a few dozen pixels) differs from the synthetic set.
        assert (~same.all(axis=2) & clear).sum() < 120


def test_the_relight_is_local_the_look_is_global(shot: RelitShot) -> None:
    plate, relit, look = (f.stack(RGB) for f in (shot.plates[2], shot.relits[2], shot.looks[2]))
    np.testing.assert_allclose(look, apply_grade(plate, shot.grade), rtol=2e-3, atol=1e-4)  # half rounding
    gain = relit.mean(axis=2) / np.maximum(plate.mean(axis=2), 1e-3)
    assert gain.min() >= 0.99 and np.percentile(gain, 95) > 1.5 * np.percentile(gain, 5)  # light varies over the frame
    # No global affine colour transform comes close to the relight, while one fits the look well.
    relit_error = np.abs(_fit_affine(plate, relit) - relit).mean() / relit.mean()
    look_error = np.abs(_fit_affine(plate, look) - look).mean() / look.mean()
    assert relit_error > 0.1 and look_error < 0.05


def test_key_light_follows_the_aovs(shot: RelitShot) -> None:
    """Away from the practical, relit / plate is exactly the key light computed from N and P."""
    frame = shot.plates[1]
    plate, relit = frame.stack(RGB), shot.relits[1].stack(RGB)
    normal, position = frame.stack(AOV_CHANNELS[:3]), frame.stack(AOV_CHANNELS[3:])
    key, lamp = shot.key_light, shot.practical
    to_light = np.array(key.position) - position
    distance = np.linalg.norm(to_light, axis=2)
    lambert = np.maximum((normal * to_light).sum(axis=2) / distance, 0)
    gain = key.intensity * lambert / (1 + (distance / key.radius) ** 2)
    u, v = position[..., 0] / 0.01, position[..., 1] / 0.01
    far = np.hypot(u - lamp.x, v - lamp.y) > 6 * lamp.spread
    assert far.sum() > 1000
    expected = plate * (1 + gain[..., None] * np.array(key.colour))
    np.testing.assert_allclose(relit[far], expected[far], rtol=2e-3, atol=1e-4)


def test_without_aovs_frames_have_no_aov_channels() -> None:
    bare = make_relit_shot(width=32, height=32, frames=1, aovs=False)
    assert list(bare.plates[0].channels) == ["R", "G", "B", "A", "Z"]


@pytest.mark.parametrize("size", [pytest.param((8, 32, 1), id="narrow"), pytest.param((32, 32, 0), id="no-frames")])
def test_refuses_degenerate_sizes(size: tuple[int, int, int]) -> None:
    width, height, frames = size
    with pytest.raises(ValueError, match="at least 16x16"):
        make_relit_shot(width=width, height=height, frames=frames)


def test_write_relit_shot_round_trips(tmp_path: Path) -> None:
    small = make_relit_shot(width=32, height=24, frames=2)
    patterns = write_relit_shot(small, tmp_path)
    assert set(patterns) == {"plate", "relit", "look"}
    back = read_exr(tmp_path / "relit.1002.exr")
    assert back.channels["R"].tobytes() == small.relits[1].channels["R"].tobytes()
    assert back.channels["P.x"].tobytes() == small.relits[1].channels["P.x"].tobytes()
