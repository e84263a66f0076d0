"""The learned matte ("matte" mode): keyframe mattes teach a net that starts as the classical key;
bad keyframe sets are refused naming what is missing; the model is served by a real server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import FrameError, ManifestError, ModelIntegrityError
from plateforge.exr import write_exr
from plateforge.frames import Box, Frame
from plateforge.jobs_client import TrainingClient
from plateforge.manifest_format import register
from plateforge.shots.dailies import MatteShot, make_matte_shot
from plateforge_server.jobs._manager import build_config
from plateforge_server.modelcard import verify_model
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.learned import net_config_of, tool_module_for
from plateforge_server.tools.matte import classical as matte_classical
from plateforge_server.tools.matte.evaluation import write_matte_dataset
from plateforge_server.tools.matte.examples import LOSS_SETTINGS, load_matte_data
from plateforge_server.tools.matte.guide import (
    BAND_INSIDE,
    BAND_OUTSIDE,
    KEY_CHANNEL,
    band_of,
    matte_planes,
    merge,
    shaded,
    unknown_band,
)
from plateforge_server.training import TrainConfig, train
from plateforge_server.training.data import Sampler
from plateforge_server.training.defaults import TOOL_DEFAULTS
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.training.helpers import fast

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def shot() -> MatteShot:
    return make_matte_shot(width=96, height=64, frames=4, seed=1)


def matte_config(**changes: object) -> object:
    return fast(mode="matte", tool="matte", **changes)


def call_for(info: object, shot: MatteShot, index: int) -> ToolCall:
    inputs = {
        "plate": [shot.plates[index]],
        "clean_plate": [shot.cleans[index]],
        "background": [shot.backgrounds[index]],
    }
    return ToolCall(info=info, inputs=inputs, params={}, target_frame=None)  # type: ignore[arg-type]


def test_tool_matte_trains_in_matte_mode() -> None:
    assert build_config(tool="matte").mode == "matte"
    assert build_config(tool="matte").model_tool == "matte"
    assert build_config(tool="look").mode == "pairs"
    # The matte mode's own loss unless the request says otherwise; other modes keep theirs.
    matte = build_config(tool="matte")
    assert (matte.mse_weight, matte.ssim_weight) == (LOSS_SETTINGS["mse_weight"], LOSS_SETTINGS["ssim_weight"])
    assert build_config(tool="matte", params={"mse_weight": 2.0}).mse_weight == 2.0
    # Look has its own defaults (plateforge_server.training.defaults); a tool without any keeps TrainConfig's.
    assert build_config(tool="look").mse_weight == TOOL_DEFAULTS["look"].fields["mse_weight"]
    assert build_config(tool="denoise").mse_weight == TrainConfig().mse_weight


def test_the_band_holds_the_keys_uncertainty_and_merge_keeps_the_key_outside_it() -> None:
    key = np.zeros((64, 64), np.float32)
    ys, xs = np.mgrid[0:64, 0:64]
    distance = np.hypot(ys - 32, xs - 32)
    key[:] = np.clip(20.0 - distance, 0.0, 1.0)  # a disc of radius 20 with a one-pixel soft edge
    band = unknown_band(key)
    soft = (key > 0) & (key < 1)
    assert band[soft].all()  # every soft pixel is the net's
    assert band[(distance > 20) & (distance < 19 + BAND_OUTSIDE)].all()  # faint hair just outside too
    assert not band[distance > 20 + BAND_OUTSIDE + 1].any()  # plain background is not
    assert not band[distance < 19 - BAND_INSIDE - 1].any()  # nor the solid core
    merged = merge(key, np.full_like(key, 0.5))
    assert np.array_equal(merged[~band], key[~band]) and np.all(merged[band] == 0.5)
    assert np.all(merge(key, np.full_like(key, np.nan))[band] == 0.0)  # NaN counts as 0, clipped


def test_a_shadow_the_key_calls_solid_is_the_nets_to_decide() -> None:
    """The difference key keys a cast shadow as subject, solidly; the shadow is the set darker with
    its own colour, so band_of gives it to the net (which learns alpha 0 there from the keyframes),
    while a solid subject of another colour stays the key's certain core."""
    rng = np.random.default_rng(0)
    clean = (0.2 + 0.3 * rng.random((64, 96, 1)) * np.array([1.0, 0.8, 0.6])).astype(np.float32)
    clean = np.ascontiguousarray(np.repeat(np.repeat(clean[::8, ::8], 8, 0), 8, 1))  # blocky set
    plate = clean.copy()
    plate[16:48, 8:40] *= 0.4  # a shadow: the set at 40 % of its light
    plate[16:48, 56:88] = [0.9, 0.05, 0.05]  # a red subject
    planes = matte_planes(plate, clean)
    key = planes[:, :, KEY_CHANNEL]
    assert key[20:44, 12:36].min() >= 1.0 and key[20:44, 60:84].min() >= 1.0  # the key calls both solid
    assert shaded(plate, clean)[20:44, 12:36].all() and not shaded(plate, clean)[20:44, 60:84].any()
    assert not unknown_band(key)[28:36, 20:28].any()  # the key alone would keep the shadow as subject
    band = band_of(planes)
    assert band[16:48, 8:40].all() and not band[24:40, 64:80].any()
    merged = merge(key, np.zeros_like(key), band)
    assert np.all(merged[16:48, 8:40] == 0.0) and np.all(merged[24:40, 64:80] == 1.0)


def test_training_pulls_the_edge_off_the_key(tmp_path: Path, shot: MatteShot) -> None:
    """The net starts exactly as the key; the matte loss must move it to the keyframe mattes (plain L1 did not)."""
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 3))
    config = matte_config(steps=40, crop=48, batch=4, lr=2e-3, warmup=4, exposure_jitter=0.0, **LOSS_SETTINGS)
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")  # type: ignore[arg-type]
    module = tool_module_for(result.model_dir)
    state = module.load(device="cpu")
    classical = matte_classical.load(device="cpu")
    errors = {"learned": 0.0, "classical": 0.0}
    for index in (0, 3):  # the keyframes it learned from: a few dozen steps must fit them better
        learned = module.run(state, call_for(module.info, shot, index))["alpha"].channels["A"]
        keyed = matte_classical.run(classical, call_for(matte_classical.INFO, shot, index))["alpha"].channels["A"]
        errors["learned"] += float(np.abs(learned - shot.alpha(index)).sum())
        errors["classical"] += float(np.abs(keyed - shot.alpha(index)).sum())
    assert errors["learned"] < 0.9 * errors["classical"], errors


def test_an_untrained_net_is_exactly_the_classical_key(tmp_path: Path, shot: MatteShot) -> None:
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 3))
    data = load_matte_data(matte_config(), manifest)  # type: ignore[arg-type]
    assert [f.number for f in data.frames] == [1001, 1004] and data.in_channels == 7
    assert all(not f.target_light for f in data.frames)

    result = train(matte_config(steps=1, lr=1e-12, warmup=0), manifest_path=manifest, out_dir=tmp_path / "run")  # type: ignore[arg-type]
    card = verify_model(result.model_dir)
    assert card.net.arch == "matte-unet" and card.tool == "matte"
    assert [i.name for i in card.inputs] == ["plate", "clean_plate", "background"]
    assert [o.name for o in card.outputs] == ["alpha", "foreground", "composite"]
    module = tool_module_for(result.model_dir)
    state = module.load(device="cpu")
    classical = matte_classical.load(device="cpu")
    for index in (1, 2):
        learned = module.run(state, call_for(module.info, shot, index))
        expected = matte_classical.run(classical, call_for(matte_classical.INFO, shot, index))
        assert set(learned) == {"alpha", "foreground", "composite"}
        assert np.allclose(learned["alpha"].channels["A"], expected["alpha"].channels["A"], atol=1e-4)


def test_exposure_jitter_scales_the_plates_never_the_matte(tmp_path: Path, shot: MatteShot) -> None:
    """Alpha is not light: a crop taken two stops up or down keeps its target in encode([0, 1])."""
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 3))
    config = matte_config(exposure_jitter=2.0, batch=8, crop=32)
    data = load_matte_data(config, manifest)  # type: ignore[arg-type]
    sampler = Sampler(config, data)  # type: ignore[arg-type]
    ceiling = float(np.log1p(1.0)) + 1e-6
    planes_moved = False
    for _ in range(4):
        batch = sampler.batch()
        assert float(batch.target.min()) >= 0.0 and float(batch.target.max()) <= ceiling
        key = batch.inputs[:, KEY_CHANNEL]
        assert float(key.min()) >= 0.0 and float(key.max()) <= ceiling
        planes_moved |= bool(float(batch.inputs[:, :6].max()) > float(np.log1p(4.0)))
    assert planes_moved, "two stops up, some plate values pass 4: the plates are scaled"


def test_training_runs_and_changes_the_key(tmp_path: Path, shot: MatteShot) -> None:
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 2))
    config = matte_config(steps=4, crop=32, batch=2, lr=3e-3, warmup=0)
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")  # type: ignore[arg-type]
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    module = tool_module_for(result.model_dir)
    learned = module.run(module.load(device="cpu"), call_for(module.info, shot, 1))["alpha"].channels["A"]
    classical = matte_classical.run(matte_classical.load(device="cpu"), call_for(matte_classical.INFO, shot, 1))
    assert learned.min() >= 0.0 and learned.max() <= 1.0
    assert not np.allclose(learned, classical["alpha"].channels["A"], atol=1e-4)


def _write(
    folder: Path, shot: MatteShot, *, plates: list[int], cleans: list[int], mattes: dict[int, np.ndarray]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in plates:
        write_exr(folder / f"plate.{shot.frame_numbers[i]}.exr", shot.plates[i])
    for i in cleans:
        write_exr(folder / f"clean.{shot.frame_numbers[i]}.exr", shot.cleans[i])
    for i, alpha in mattes.items():
        window = shot.alphas[i].data_window
        write_exr(folder / f"matte.{shot.frame_numbers[i]}.exr", Frame({"A": alpha.astype(np.float32)}, window, window))
    text = 'schema = "plateforge.dataset/1"\nname = "matte-test"\n'
    roles = [("plate", "plate.*.exr"), ("clean_plate", "clean.*.exr")] + ([("matte", "matte.*.exr")] if mattes else [])
    for role, pattern in roles:
        text += (
            f'\n[[sources]]\npath = "{pattern}"\nlicence = "CC0-1.0"\nrights_holder = "Test"\n'
            f'permitted_uses = ["train"]\nrole = "{role}"\n'
        )
    manifest = folder / "dataset.toml"
    manifest.write_text(text, encoding="utf-8")
    register(manifest)
    return manifest


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        pytest.param(
            "one-keyframe",
            ManifestError,
            r"at least 2 keyframe mattes.*has 1 .*frames \[1001\].*add 1 more",
            id="fewer-keyframes",
        ),
        pytest.param("no-keyframes", ManifestError, r"no keyframe mattes \(role 'matte'\)", id="no-keyframes"),
        pytest.param(
            "empty-and-full",
            ManifestError,
            r"has 0 .*\[1001, 1002\] have an empty or full matte",
            id="empty-and-full-mattes",
        ),
        pytest.param(
            "one-empty", ManifestError, r"has 1 .*\[1002\] have an empty or full matte", id="empty-matte-does-not-count"
        ),
        pytest.param("orphan", ManifestError, r"matte\.1004\.exr.*no plate or clean_plate", id="matte-without-plate"),
        pytest.param("no-clean", ManifestError, r"clean_plate", id="plate-without-clean-plate"),
        pytest.param("small-clean", FrameError, r"differ in size", id="clean-plate-of-wrong-size"),
    ],
)
def test_bad_keyframe_sets_are_refused(
    tmp_path: Path, shot: MatteShot, case: str, error: type[Exception], message: str
) -> None:
    mattes = {0: shot.alpha(0), 2: shot.alpha(2)}
    plates, cleans = [0, 1, 2], [0, 1, 2]
    if case == "one-keyframe":
        mattes = {0: shot.alpha(0)}
    elif case == "no-keyframes":
        mattes = {}
    elif case == "empty-and-full":
        mattes = {0: np.zeros_like(shot.alpha(0)), 1: np.ones_like(shot.alpha(1))}
    elif case == "one-empty":
        mattes = {0: shot.alpha(0), 1: np.zeros_like(shot.alpha(1))}
    elif case == "orphan":
        mattes[3] = shot.alpha(3)
    elif case == "no-clean":
        cleans = [0, 2]
    manifest = _write(tmp_path, shot, plates=plates, cleans=cleans, mattes=mattes)
    if case == "small-clean":
        clean = shot.cleans[2]
        window = Box.from_size(40, 30)
        small = Frame({k: np.ascontiguousarray(v[:30, :40]) for k, v in clean.channels.items()}, window, window)
        write_exr(tmp_path / "clean.1003.exr", small)
        register(manifest)
    with pytest.raises(error, match=message):
        load_matte_data(matte_config(), manifest)  # type: ignore[arg-type]


def test_more_keyframes_can_be_required(tmp_path: Path, shot: MatteShot) -> None:
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 1, 3))
    assert len(load_matte_data(matte_config(min_keyframes=3), manifest).frames) == 3  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="at least 4 keyframe mattes"):
        load_matte_data(matte_config(min_keyframes=4), manifest)  # type: ignore[arg-type]


def test_a_matte_card_must_describe_a_matte_net(tmp_path: Path, shot: MatteShot) -> None:
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 3))
    result = train(matte_config(steps=1), manifest_path=manifest, out_dir=tmp_path / "run")  # type: ignore[arg-type]
    card = verify_model(result.model_dir)
    wrong = dataclasses.replace(
        card,
        net=dataclasses.replace(card.net, config={**card.net.config, "out_channels": 3, "residual_from": [0, 1, 2]}),
    )
    with pytest.raises(ModelIntegrityError, match="matte-unet needs"):
        net_config_of(wrong, source="card.json")


def test_train_tool_matte_as_a_job_then_serve_it(tmp_path: Path, shot: MatteShot) -> None:
    """What `plateforge train --tool matte` does: a job on a real server, in "matte" mode; the model
    is published, listed as a matte tool and processes a frame like the local runtime does."""
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 3))
    models = tmp_path / "models"
    proc = start_server("--models-dir", str(models), "--jobs-dir", str(tmp_path / "jobs"))
    try:
        with Client(proc.address, token=TOKEN, timeout=120) as client:
            training = TrainingClient(client)
            params = {"steps": 2, "batch": 1, "crop": 32, "warmup": 1, "validation_size": 32}
            job = training.start_training(
                dataset=str(manifest), tool="matte", params=params, model_name="matte-test", model_version="1"
            )
            states = [event.job.state for event in training.watch(job.id)]
            assert states[-1] == "SUCCEEDED", training.get(job.id).error
            folder = Path(training.get(job.id).model_dir)
            card = verify_model(folder)
            assert card.net.arch == "matte-unet" and card.training["mode"] == "matte"

            info = {m.name: m for m in client.list_models()}["matte-test"]
            assert info.tool == "matte"
            assert [i.name for i in info.inputs] == ["plate", "clean_plate", "background"]
            given = {"plate": shot.plates[1], "clean_plate": shot.cleans[1], "background": shot.backgrounds[1]}
            served = client.process("matte-test", given)
            local = tool_module_for(folder)
            expected = local.run(local.load(device="cpu"), call_for(local.info, shot, 1))
            assert set(served.outputs) == {"alpha", "foreground", "composite"}
            assert np.allclose(served.outputs["alpha"].channels["A"], expected["alpha"].channels["A"], atol=1e-5)
            assert served.provenance["plateforge/modelHash"] == card.weights_sha256
            with pytest.raises(FrameError, match="clean_plate"):
                client.process("matte-test", {"plate": shot.plates[1]})
    finally:
        assert proc.stop() == 0


def test_a_matte_run_outside_a_job_gets_the_same_loss() -> None:
    """python -m plateforge_server.training.run (torchrun, farm templates) assembles its config
    through the same mode defaults as a training job."""
    from plateforge_server.training.run import load_config

    matte = load_config(None, ["mode=matte"])
    assert (matte.mse_weight, matte.ssim_weight) == (LOSS_SETTINGS["mse_weight"], LOSS_SETTINGS["ssim_weight"])
    assert load_config(None, ["mode=matte", "ssim_weight=0.3"]).ssim_weight == 0.3
    assert load_config(None, ["mode=pairs"]).mse_weight == TrainConfig().mse_weight


def test_the_loss_sees_the_alpha_the_runtime_delivers() -> None:
    import torch

    from plateforge_server.nets.unet import encode
    from plateforge_server.tools.matte.examples import ENCODED_ONE, bounded, delivered

    target = encode(torch.tensor([1.0, 1.0, 0.0, 0.0, 0.5, 0.5]).view(1, 1, 1, 6))
    leaf = torch.tensor([0.9, 0.5, -0.4, 0.3, 0.9, -0.1], requires_grad=True)
    output = leaf.view(1, 1, 1, 6)
    scored = bounded(output, target)
    # Beyond the bound the truth sits at: exact once clipped, so scored as the target (no gradient).
    assert float(scored[0, 0, 0, 0]) == pytest.approx(ENCODED_ONE) and float(scored[0, 0, 0, 2]) == 0.0
    # Short of it, or a soft alpha on either side: the output itself, pulled back by the loss.
    np.testing.assert_allclose(scored.detach()[0, 0, 0, [1, 3, 4, 5]].numpy(), [0.5, 0.3, 0.9, -0.1], rtol=1e-6)
    scored.sum().backward()  # type: ignore[no-untyped-call]
    assert leaf.grad is not None
    np.testing.assert_array_equal(leaf.grad.numpy(), [0, 1, 0, 1, 1, 1])
    np.testing.assert_allclose(
        delivered(output.detach())[0, 0, 0].numpy(), [ENCODED_ONE, 0.5, 0.0, 0.3, ENCODED_ONE, 0.0], rtol=1e-6
    )
