"""Pairs training with AOV channels as extra net inputs (``input_channels``), and the served model
that asks for them: the learned relight's path, on real EXRs, a real trainer and a real server."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge.client import Client
from plateforge.errors import FrameError, ManifestError, PlateforgeError, UsageError
from plateforge.exr import write_exr
from plateforge.jobs_client import TrainingClient
from plateforge.modelcards import read_model_card
from plateforge.shots.relit import AOV_CHANNELS, make_relit_shot
from plateforge_server.training import TrainConfig, train
from plateforge_server.training.data import Sampler, encode_planes, load_training_data
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.training.helpers import fast

RGB = ("R", "G", "B")
WITH_AOVS = (*RGB, *AOV_CHANNELS)


def _licence(role: str, pattern: str) -> str:
    return (
        f'\n[[sources]]\npath = "{pattern}"\nlicence = "CC-BY-4.0"\nrights_holder = "Test Pictures"\n'
        f'permitted_uses = ["train"]\nrole = "{role}"\n'
    )


def write_relight_pairs(
    folder: Path,
    *,
    frames: int = 3,
    width: int = 48,
    height: int = 32,
    strip_aovs: tuple[int, ...] = (),
    unchanged: tuple[int, ...] = (),
) -> Path:
    """Plates (with AOVs, except frames in ``strip_aovs``) -> relit pairs and a manifest; its path."""
    shot = make_relit_shot(width=width, height=height, frames=frames, seed=5)
    folder.mkdir(parents=True, exist_ok=True)
    for k, (number, plate, relit) in enumerate(zip(shot.frame_numbers, shot.plates, shot.relits, strict=True)):
        if k in strip_aovs:
            plate = plate.replace(channels={n: v for n, v in plate.channels.items() if n not in AOV_CHANNELS})
        write_exr(folder / f"plate.{number}.exr", plate)
        write_exr(folder / f"relit.{number}.exr", plate if k in unchanged else relit)
    manifest = folder / "dataset.toml"
    text = 'schema = "plateforge.dataset/1"\nname = "relight-test"\n'
    manifest.write_text(text + _licence("input", "plate.*.exr") + _licence("target", "relit.*.exr"), encoding="utf-8")
    return manifest


# -- the config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"input_channels": ("G", "R", "B")}, "must start with R, G, B", id="not-rgb-first"),
        pytest.param({"input_channels": ("R", "G", "B", "Z", "Z")}, "names a channel twice", id="repeated"),
        pytest.param({"input_channels": ("R", "G", "B", "")}, "list of channel names", id="empty-name"),
        pytest.param({"mode": "inpaint", "input_channels": WITH_AOVS}, '"pairs" mode only', id="not-pairs"),
    ],
)
def test_bad_input_channels_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        TrainConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(WITH_AOVS, id="tuple"),
        pytest.param(list(WITH_AOVS), id="json-list"),
        pytest.param(",".join(WITH_AOVS), id="param-text"),
    ],
)
def test_input_channels_round_trip(given: object) -> None:
    config = TrainConfig(input_channels=given)  # type: ignore[arg-type]
    assert config.input_channels == WITH_AOVS
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig().input_channels == RGB


# -- the data ------------------------------------------------------------------------------------


def test_aovs_are_extra_inputs_that_exposure_leaves_alone(tmp_path: Path) -> None:
    manifest = write_relight_pairs(tmp_path, frames=2, width=32)
    config = fast(input_channels=WITH_AOVS, crop=64, flips=False, exposure_jitter=2.0, tool="relight")
    data = load_training_data(config, manifest)
    assert data.in_channels == len(WITH_AOVS)
    frame = data.frames[0]
    assert frame.image.shape == (len(WITH_AOVS), 32, 32) and frame.target.shape == (3, 32, 32)
    batch = Sampler(config, data).batch()  # whole frames (crop > size) of the one training frame
    aovs = torch.from_numpy(np.ascontiguousarray(frame.image[3:]))
    for k in range(batch.inputs.shape[0]):
        assert torch.equal(batch.inputs[k, 3:], aovs)  # AOVs untouched by the exposure change
    assert not torch.allclose(
        batch.inputs[:, :3], torch.from_numpy(frame.image[:3]).expand(len(batch.inputs), -1, -1, -1)
    )


def test_a_frame_missing_its_aovs_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = write_relight_pairs(tmp_path, frames=3, strip_aovs=(1,))
    with pytest.raises(FrameError, match=r"'plate\.1002\.exr' has no channel\(s\) \['N\.x'.*'P\.z'\]"):
        load_training_data(fast(input_channels=WITH_AOVS), manifest)
    assert load_training_data(fast(), manifest).in_channels == 3  # R, G, B alone: every frame has them


def test_pairs_of_different_sizes_are_refused(tmp_path: Path) -> None:
    manifest = write_relight_pairs(tmp_path, frames=2)
    other = make_relit_shot(width=40, height=32, frames=1, seed=5)
    write_exr(tmp_path / "relit.1002.exr", other.relits[0].replace(frame_number=1002))
    with pytest.raises(FrameError, match=r"differ in size: 'plate\.1002\.exr' \(input\) is 48x32, 'relit\.1002\.exr'"):
        load_training_data(fast(input_channels=WITH_AOVS), manifest)


def test_unchanged_targets_warn_and_all_unchanged_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    some = write_relight_pairs(tmp_path / "some", frames=3, unchanged=(0,))
    with caplog.at_level(logging.WARNING, logger="plateforge_server.training"):
        load_training_data(fast(), some)
    assert "'relit.1001.exr'" in caplog.text and "identical to their inputs" in caplog.text
    every = write_relight_pairs(tmp_path / "every", frames=2, unchanged=(0, 1))
    with pytest.raises(ManifestError, match=r"every target equals its input .*'relit\.1001\.exr', 'relit\.1002\.exr'"):
        load_training_data(fast(), every)


# -- trained, published, served ------------------------------------------------------------------


def test_trained_relight_with_aovs_is_served_and_asks_for_them(tmp_path: Path) -> None:
    manifest = write_relight_pairs(tmp_path / "data", frames=2)
    models = tmp_path / "models"
    proc = start_server("--models-dir", str(models), "--jobs-dir", str(tmp_path / "jobs"))
    try:
        with Client(proc.address, token=TOKEN, timeout=120) as client:
            training = TrainingClient(client)
            params = {"steps": 3, "batch": 1, "crop": 16, "warmup": 1, "validation_size": 32,
                      "input_channels": ",".join(WITH_AOVS)}  # fmt: skip
            job = training.start_training(
                dataset=str(manifest), tool="relight", params=params, model_name="relight-aov", model_version="1"
            )
            states = [event.job.state for event in training.watch(job.id)]
            assert states[-1] == "SUCCEEDED", training.get(job.id).error
            card = read_model_card(models / "relight-aov" / "1")
            assert card["training"]["input_channels"] == list(WITH_AOVS)

            info = {m.name: m for m in client.list_models()}["relight-aov"]
            assert info.tool == "relight"
            assert info.inputs[0].name == "plate" and info.inputs[0].channels == WITH_AOVS
            shot = make_relit_shot(width=48, height=32, frames=3, seed=5)
            plate = shot.plates[2]
            out = client.process("relight-aov", {"plate": plate}).outputs["image"]
            assert np.isfinite(out.stack(RGB)).all()
            for name in AOV_CHANNELS:
                assert out.channels[name].tobytes() == plate.channels[name].tobytes()
            bare = plate.replace(channels={n: v for n, v in plate.channels.items() if n not in ("N.y", "P.z")})
            with pytest.raises(PlateforgeError, match=r"input 'plate'.*lacks channel\(s\) \['N\.y', 'P\.z'\]"):
                client.process("relight-aov", {"plate": bare})
    finally:
        assert proc.stop() == 0


def test_engine_net_reads_the_aovs(tmp_path: Path) -> None:
    """In process: the exported net takes 9 channels, and its output depends on the AOVs."""
    from plateforge_server.modelcard import load_weights
    from plateforge_server.nets.unet import UNet
    from plateforge_server.training import net_config_for

    manifest = write_relight_pairs(tmp_path / "data", frames=2)
    config = fast(input_channels=WITH_AOVS, steps=4, tool="relight")
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    net = UNet(net_config_for(config))
    net.load_state_dict(load_weights(result.model_dir))
    assert net.config.in_channels == len(WITH_AOVS)
    x = torch.from_numpy(encode_planes(np.random.default_rng(0).uniform(0, 1, (1, 9, 32, 32)).astype(np.float32)))
    moved = x.clone()
    moved[:, 3:] += 0.5
    with torch.no_grad():
        assert not torch.allclose(net(x), net(moved))
