"""The learned cleanup ("cleanup" mode): samples cut from the shot itself, a net that starts as
the classical cleanup, and a runtime that feeds it exactly what training fed it."""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from plateforge.errors import CancelledError, ManifestError, ModelIntegrityError
from plateforge.shots.synthetic import make_shot
from plateforge_server.modelcard import verify_model
from plateforge_server.nets.unet import UNetConfig
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.tools.cleanup.examples import (
    LIGHT_CHANNELS,
    load_guided_data,
    marker_holes,
    rig_holes,
    soft_edges,
)
from plateforge_server.tools.cleanup.guide import FILL_CHANNELS, GUIDE_CHANNELS, guide_planes
from plateforge_server.tools.learned import net_config_of, tool_module_for
from plateforge_server.training import train
from plateforge_server.training.data import Sampler, decode_planes
from tests.plateforge_server.training.helpers import fast, write_shot_dataset

RGB = ("R", "G", "B")


def test_rig_holes_are_rig_sized_and_binary() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        hole = rig_holes(rng, 270, 480)
        assert hole.shape == (270, 480) and set(np.unique(hole)) <= {0.0, 1.0}
        share = float(hole.mean())
        assert 0.0 < share < 0.2  # a rig, never most of the frame
    assert rig_holes(np.random.default_rng(1), 20, 30).shape == (20, 30)  # frames smaller than a patch


def test_marker_holes_are_thin_and_small() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        hole = marker_holes(rng, 270, 480)
        assert hole.shape == (270, 480) and set(np.unique(hole)) <= {0.0, 1.0}
        assert 0 < int(hole.sum()) < 3 * 16 * 16 * 4  # at most three markers, none bigger than a 16-px box
        # Thin: eroding by a 9-pixel square leaves at most the small boxes' cores.
        kernel = np.ones((9, 9), np.uint8)
        core = cv2.erode(hole.astype(np.uint8), kernel)
        assert core.sum() < 0.5 * hole.sum()


def test_soft_edges_grow_then_fade() -> None:
    hole = np.zeros((40, 40), np.float32)
    hole[18:22, 10:30] = 1.0
    soft = soft_edges(np.random.default_rng(0), hole)
    assert soft.dtype == np.float32 and soft.min() == 0.0 and soft.max() == 1.0
    assert np.all(soft[hole > 0] == 1.0)  # the hole itself stays fully covered
    assert np.any((soft > 0) & (soft < 1))  # a soft edge
    assert np.all(soft[:, :3] == 0) and np.all(soft[:8] == 0)  # ... that ends within 6 pixels
    assert not soft_edges(np.random.default_rng(0), np.zeros((5, 6), np.float32)).any()


def test_marker_holes_are_stuck_on_the_set(tmp_path: Path) -> None:
    """Markers are cut world-locked in the neighbours too, so none shows them: only spatial inpainting fills them."""
    manifest = write_shot_dataset(tmp_path / "shot")
    config = fast(mode="cleanup", holes_per_frame=3, marker_holes=1.0, roto_holes=0.0, soft_holes=True)
    data = load_guided_data(config, manifest)
    assert sum(s.mask is not None and s.mask.max() == 1.0 for s in data.frames) >= len(data.frames) - 1
    for sample in data.frames:
        assert sample.mask is not None
        shown = decode_planes(sample.image[7])
        assert not np.any(shown[sample.mask > 0])


def test_guide_planes_layout() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 3, (8, 9, 3)).astype(np.float32)
    fill = rng.uniform(0, 3, (8, 9, 3)).astype(np.float32)
    mask = np.zeros((8, 9), np.float32)
    mask[2:5, 3:7] = 1.0
    mask[5, 3:7] = 0.5
    shown = mask > 0.7
    planes = guide_planes(rgb, mask, fill, shown)
    assert planes.shape == (8, 9, GUIDE_CHANNELS) and planes.dtype == np.float32
    clear = mask == 0
    np.testing.assert_array_equal(planes[clear][:, :3], rgb[clear])  # the plate untouched where clear
    assert np.all(planes[mask == 1][:, :3] == 0)  # the rig never leaks through
    soft = planes[5, 3:7, :3]
    assert np.all((soft > 0) & (soft < rgb[5, 3:7]))  # a soft edge fades
    np.testing.assert_array_equal(planes[..., list(FILL_CHANNELS)], fill)
    np.testing.assert_array_equal(planes[..., 6], mask)
    np.testing.assert_array_equal(planes[..., 7], shown.astype(np.float32))


def test_samples_teach_only_where_the_truth_is_known(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")  # 96x64, 4 frames
    config = fast(mode="cleanup", holes_per_frame=3, exposure_jitter=1.0)
    data = load_guided_data(config, manifest)
    assert data.held_out and len(data.frames) == 3 * 3  # the last frame's patterns are held out
    assert data.in_channels == GUIDE_CHANNELS and data.validation.target.shape[1] == 3
    shot = make_shot(width=96, height=64, frames=4)
    for sample in data.frames:
        roto = cleanup_classical.mask_array(shot.frame(sample.number).mask)
        assert sample.mask is not None and sample.mask.max() == 1.0 and sample.mask.min() == 0.0
        assert np.all(sample.mask[roto > 0] == 0)  # no loss under the real rig: its truth is unknown
        assert sample.focus is not None and np.all(sample.mask.ravel()[sample.focus] > 0)
        assert sample.light_channels == LIGHT_CHANNELS
        plate = shot.frame(sample.number).plate.stack(RGB).transpose(2, 0, 1)
        np.testing.assert_allclose(decode_planes(sample.target), plate, rtol=1e-5, atol=1e-6)
        hidden = decode_planes(sample.image[6])  # the classical mask: the holes and the real rig
        assert np.all(hidden >= sample.mask - 1e-6) and np.all(hidden[roto > 0] > 0)

    # Exposure jitter scales light, never the masks.
    batch = Sampler(config, data).batch()
    masks = batch.inputs[:, 6:].numpy()
    assert set(np.unique(np.round(decode_planes(masks[:, 1]), 6))) <= {0.0, 1.0}
    assert float(decode_planes(masks[:, 0]).max()) <= 1.0 + 1e-6


def test_one_frame_needs_two_patterns(tmp_path: Path) -> None:
    write_shot_dataset(tmp_path / "shot")
    lone = tmp_path / "shot" / "one.toml"
    lone.write_text(
        'schema = "plateforge.dataset/1"\nname = "one"\n'
        '[[sources]]\npath = "plate.1001.exr"\nlicence = "CC0-1.0"\nrights_holder = "T"\npermitted_uses = ["train"]\n'
        'role = "plate"\n'
    )
    with pytest.raises(ManifestError, match="one plate frame"):
        load_guided_data(fast(mode="cleanup", holes_per_frame=1), lone)
    assert len(load_guided_data(fast(mode="cleanup", holes_per_frame=3), lone).frames) == 2


def _call(shot_frames: int, model_info: object, *, size: tuple[int, int] = (96, 64)) -> tuple[ToolCall, object]:
    shot = make_shot(width=size[0], height=size[1], frames=shot_frames)
    numbers = shot.frame_numbers
    target = numbers[len(numbers) // 2]
    plates = [p.replace(frame_number=n) for p, n in zip(shot.plates, numbers, strict=True)]
    masks = [m.replace(frame_number=n) for m, n in zip(shot.masks, numbers, strict=True)]
    call = ToolCall(info=model_info, inputs={"plate": plates, "mask": masks}, params={}, target_frame=target)  # type: ignore[arg-type]
    return call, shot


def test_an_untrained_net_is_exactly_the_classical_cleanup(tmp_path: Path) -> None:
    """lr so small the net cannot move: the served model must then give cleanup-classical's
    pixels, which proves the runtime builds the same inputs, residual and composite."""
    manifest = write_shot_dataset(tmp_path / "shot")
    config = fast(mode="cleanup", steps=1, lr=1e-12, warmup=0, holes_per_frame=2)
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    assert result.val_psnr == pytest.approx(result.identity_psnr, abs=1e-3)

    card = verify_model(result.model_dir)
    assert card.net.arch == "guided-unet" and card.tool == "cleanup"
    assert [(i.name, i.temporal_radius) for i in card.inputs] == [("plate", 2), ("mask", 2)]
    assert "classical_psnr" in card.metrics and card.padding >= cleanup_classical.INFO.padding

    module = tool_module_for(result.model_dir)
    state = module.load(device="cpu")
    call, shot = _call(4, module.info)
    learned = module.run(state, call)["image"]
    classical = cleanup_classical.run(
        cleanup_classical.load(device="cpu"), dataclasses.replace(call, info=cleanup_classical.INFO)
    )["image"]
    assert list(learned.channels) == list(classical.channels)  # A and Z pass through
    for name, pixels in classical.channels.items():
        assert learned.channels[name].dtype == pixels.dtype
        diff = np.abs(learned.channels[name].astype(np.float64) - pixels.astype(np.float64))
        assert diff.max() <= 2e-3 * max(1.0, float(np.abs(pixels).max())), name
    plate = shot.frame(call.target_frame).plate
    clear = cleanup_classical.mask_array(shot.frame(call.target_frame).mask) == 0
    for name in RGB:  # outside the mask: the plate, bit for bit
        np.testing.assert_array_equal(learned.channels[name][clear], plate.channels[name][clear])


def test_a_cancelled_call_stops(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")
    result = train(fast(mode="cleanup", steps=1, holes_per_frame=2), manifest_path=manifest, out_dir=tmp_path / "r")
    module = tool_module_for(result.model_dir)
    call, _ = _call(4, module.info)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(CancelledError):
        module.run(module.load(device="cpu"), dataclasses.replace(call, cancelled=cancelled))


def test_a_guided_card_must_describe_a_guided_net(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")
    result = train(fast(mode="cleanup", steps=1, holes_per_frame=2), manifest_path=manifest, out_dir=tmp_path / "r")
    card = verify_model(result.model_dir)
    wrong = dataclasses.replace(
        card,
        net=dataclasses.replace(card.net, config={**card.net.config, "residual_from": [0, 1, 2]}),
    )
    with pytest.raises(ModelIntegrityError, match="guided-unet needs"):
        net_config_of(wrong, source="card.json")
    assert UNetConfig.from_dict(card.net.config).in_channels == GUIDE_CHANNELS
    assert math.isfinite(result.val_psnr)


def _manifest(folder: Path, name: str, sources: dict[str, str]) -> Path:
    text = f'schema = "plateforge.dataset/1"\nname = "{name}"\n'
    for role, path in sources.items():
        text += (
            f'\n[[sources]]\npath = "{path}"\nlicence = "CC0-1.0"\nrights_holder = "T"\npermitted_uses = ["train"]\n'
            f'role = "{role}"\n'
        )
    manifest = folder / f"{name}.toml"
    manifest.write_text(text)
    return manifest


def test_artist_fixed_keyframes_teach_the_real_rig(tmp_path: Path) -> None:
    write_shot_dataset(tmp_path / "shot")
    manifest = _manifest(
        tmp_path / "shot", "fixed", {"plate": "plate.*.exr", "mask": "mask.*.exr", "target": "clean.1002.exr"}
    )
    config = fast(mode="cleanup", holes_per_frame=2)
    data = load_guided_data(config, manifest)
    assert len(data.frames) == 3 * 2 + 2  # frame 1002's fix joins its two hole patterns, as often
    fixed = [f for f in data.frames if f.number == 1002][2:]
    shot = make_shot(width=96, height=64, frames=4)
    roto = cleanup_classical.mask_array(shot.frame(1002).mask)
    for sample in fixed:
        assert sample.mask is not None
        np.testing.assert_array_equal(sample.mask, roto)  # the loss sits under the real rig
        clean = shot.frame(1002).clean.stack(RGB).transpose(2, 0, 1)
        np.testing.assert_allclose(decode_planes(sample.target), clean, rtol=1e-5, atol=1e-6)

    no_mask = _manifest(tmp_path / "shot", "nomask", {"plate": "plate.*.exr", "target": "clean.1002.exr"})
    with pytest.raises(
        ManifestError, match=re.escape("clean.1002.exr' is an artist fix of frame 1002, which has no mask")
    ):
        load_guided_data(config, no_mask)
    orphan = _manifest(tmp_path / "shot", "orphan", {"plate": "plate.1001.exr", "target": "clean.1003.exr"})
    with pytest.raises(ManifestError, match=re.escape("clean.1003.exr' (frame 1003) has no plate")):
        load_guided_data(config, orphan)


def _shift_of(holes: np.ndarray, roto: np.ndarray) -> tuple[int, int] | None:
    """The whole-pixel move that makes the roto (where it is itself clear) exactly ``holes``, if any."""
    height, width = roto.shape
    ys, xs = np.nonzero(holes > 0)
    for dy in range(-height + 1, height):
        for dx in range(-width + 1, width):
            moved = np.zeros_like(roto)
            moved[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)] = roto[
                max(0, -dy) : height + min(0, -dy), max(0, -dx) : width + min(0, -dx)
            ]
            if moved[ys[0], xs[0]] > 0 and np.allclose(moved * (roto <= 0), holes, rtol=0, atol=1e-5):
                return dx, dy
    return None


def test_training_holes_are_the_users_roto_moved_clear(tmp_path: Path) -> None:
    """Training practises the case it will meet: every hole is the frame's own roto (its shape,
    thickness, orientation, soft edge) moved to where the roto is clear, never over it, and the
    neighbours' rotos moved alike, so what the classical fill shows there (the gate channel) is
    what a rig of that shape and motion leaves shown."""
    manifest = write_shot_dataset(tmp_path / "shot")  # 96x64, frames 1001-1004
    config = fast(mode="cleanup", holes_per_frame=3, roto_holes=1.0, exposure_jitter=0.0)
    data = load_guided_data(config, manifest)
    shot = make_shot(width=96, height=64, frames=4)
    rotos = {n: cleanup_classical.mask_array(shot.frame(n).mask) for n in shot.frame_numbers}
    plates = {n: shot.frame(n).plate.stack(RGB) for n in shot.frame_numbers}
    assert len(data.frames) == 3 * 3
    for sample in data.frames:
        roto = rotos[sample.number]
        hidden = decode_planes(sample.image[6])
        holes = np.where(roto > 0, 0.0, hidden).astype(np.float32)
        np.testing.assert_allclose(hidden, np.maximum(roto, holes), atol=1e-6)
        assert float(holes.sum()) > 0.25 * float(roto.sum())  # most of the rig fits where the roto is clear
        move = _shift_of(holes, roto)
        assert move is not None and move != (0, 0), sample.number
        # The weight (loss) lies on the holes alone, never under the real roto.
        assert sample.mask is not None and np.all(sample.mask[roto > 0] == 0)
        assert np.all((sample.mask > 0) == (holes > 0))
        # The gate channel is what the classical fill shows for this copy with the neighbours' rotos
        # moved alike (the rig's motion kept): recomputed here from the shot itself.
        dx, dy = move
        others = [n for n in shot.frame_numbers if n != sample.number and abs(n - sample.number) <= 2]
        others.sort(key=lambda n: (abs(n - sample.number), n))
        neighbours = [(plates[n], rotos[n]) for n in others]
        matrices = cleanup_classical.align_neighbours(plates[sample.number], roto, neighbours)
        moved = []
        for n in others:
            copy = np.zeros_like(rotos[n])
            height, width = copy.shape
            copy[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)] = rotos[n][
                max(0, -dy) : height + min(0, -dy), max(0, -dx) : width + min(0, -dx)
            ]
            moved.append((plates[n], np.maximum(rotos[n], copy)))
        fill = cleanup_classical.fill_plate(plates[sample.number], np.maximum(roto, holes), moved, matrices)
        np.testing.assert_array_equal(decode_planes(sample.image[7]), fill.shown.astype(np.float32))
