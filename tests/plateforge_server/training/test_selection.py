"""Model selection (issue 16.3): a run publishes the checkpoint that does best on validation data
drawn from the shot, the untrained net (the classical tool) included, so training never makes the
tool worse than classical; the card records both validation scores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge.shots.dailies import make_matte_shot
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.modelcard import load_weights, verify_model
from plateforge_server.nets.unet import UNet
from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.tools.cleanup.examples import load_guided_data
from plateforge_server.tools.learned import tool_module_for
from plateforge_server.tools.matte import classical as matte_classical
from plateforge_server.tools.matte.evaluation import write_matte_dataset
from plateforge_server.tools.matte.examples import load_matte_data
from plateforge_server.training import net_config_for, train
from tests.plateforge_server.tools.cleanup.test_learned import _call
from tests.plateforge_server.tools.matte.test_learned import call_for
from tests.plateforge_server.training.helpers import write_shot_dataset

#: Training sabotaged: the highest learning rate the job bounds allow (plateforge_server/jobs/_limits.py), which no
#: net survives. Validation after every step.
SABOTAGE = {"lr": 1.0, "warmup": 0, "validation_every": 1, "validation_size": 64}


def _assert_fresh_weights(model_dir: Path, config: object) -> None:
    fresh = UNet(net_config_for(config), seed=config.seed).state_dict()  # type: ignore[attr-defined]
    published = load_weights(model_dir)
    assert set(published) == set(fresh)
    for name, tensor in fresh.items():
        assert torch.equal(published[name], tensor), name


def test_a_sabotaged_cleanup_run_publishes_the_classical_cleanup(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")
    config = bench_config("cleanup", steps=3, device="cpu", params={**SABOTAGE, "holes_per_frame": 2})
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    card = verify_model(result.model_dir)
    metrics = card.metrics
    # Training did ruin the net, and selection kept step 0: the classical cleanup.
    assert result.val_psnr < metrics["classical_val_psnr"] - 1.0
    assert metrics["selected_step"] == 0 and metrics["selected_val_psnr"] == metrics["classical_val_psnr"]
    assert card.version == "step0" and "copies of the masks" in str(metrics["validation"])
    _assert_fresh_weights(result.model_dir, config)

    module = tool_module_for(result.model_dir)
    call, _ = _call(4, module.info)
    learned = module.run(module.load(device="cpu"), call)["image"]
    classical = cleanup_classical.run(
        cleanup_classical.load(device="cpu"), dataclasses.replace(call, info=cleanup_classical.INFO)
    )["image"]
    for name, pixels in classical.channels.items():
        diff = np.abs(learned.channels[name].astype(np.float64) - pixels.astype(np.float64))
        assert diff.max() <= 2e-3 * max(1.0, float(np.abs(pixels).max())), name


def test_a_sabotaged_matte_run_publishes_the_classical_key(tmp_path: Path) -> None:
    shot = make_matte_shot(width=96, height=64, frames=5, seed=1)
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 2, 4))
    config = bench_config("matte", steps=3, device="cpu", params=SABOTAGE)
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    metrics = verify_model(result.model_dir).metrics
    assert metrics["validation"] == "held-out keyframe 1003"  # the middle of 1001, 1003, 1005
    assert result.val_psnr < metrics["classical_val_psnr"] - 1.0
    assert metrics["selected_step"] == 0 and metrics["selected_val_psnr"] == metrics["classical_val_psnr"]
    _assert_fresh_weights(result.model_dir, config)
    module = tool_module_for(result.model_dir)
    state, classical = module.load(device="cpu"), matte_classical.load(device="cpu")
    for index in (1, 3):
        learned = module.run(state, call_for(module.info, shot, index))
        expected = matte_classical.run(classical, call_for(matte_classical.INFO, shot, index))
        np.testing.assert_allclose(learned["alpha"].channels["A"], expected["alpha"].channels["A"], atol=1e-4)
        for name in ("R", "G", "B"):
            np.testing.assert_allclose(
                learned["composite"].channels[name].astype(np.float32),
                expected["composite"].channels[name].astype(np.float32),
                atol=2e-3,
            )


def test_validation_holds_out_what_the_issue_names(tmp_path: Path) -> None:
    """Cleanup: an inner held-out frame (neighbours on both sides, as most frames have) under
    copies of the shot's own mask, none over its roto; matte: a keyframe not trained on (only
    when one more than min_keyframes is given)."""
    manifest = write_shot_dataset(tmp_path / "shot")  # 4 frames, 1001-1004
    config = bench_config("cleanup", steps=1, device="cpu", params={"holes_per_frame": 1})
    data = load_guided_data(config, manifest)
    assert data.held_out and data.validation.weight.shape[0] == 4 and float(data.validation.weight.sum()) > 20
    assert all(f.number != 1003 for f in data.frames) and len(data.frames) == 3
    assert data.validation_kind.startswith("held-out frames 1003: 4 copies")

    shot = make_matte_shot(width=96, height=64, frames=5, seed=1)
    three = write_matte_dataset(shot, tmp_path / "three", keyframes=(0, 2, 4))
    data = load_matte_data(bench_config("matte", steps=1, device="cpu"), three)
    assert [f.number for f in data.frames] == [1001, 1005] and data.held_out
    two = write_matte_dataset(shot, tmp_path / "two", keyframes=(0, 4))
    data = load_matte_data(bench_config("matte", steps=1, device="cpu"), two)
    assert [f.number for f in data.frames] == [1001, 1005] and not data.held_out
    assert "also trained on" in data.validation_kind


def test_a_resumed_run_keeps_its_best(tmp_path: Path) -> None:
    """The best weights survive a resume: the run that finishes after an interruption publishes
    what the uninterrupted run publishes."""
    shot = make_matte_shot(width=96, height=64, frames=5, seed=1)
    manifest = write_matte_dataset(shot, tmp_path / "data", keyframes=(0, 2, 4))
    params = {"validation_every": 2, "checkpoint_every": 2, "validation_size": 64, "batch": 2, "crop": 48}
    whole = bench_config("matte", steps=6, device="cpu", params=params)
    done = train(whole, manifest_path=manifest, out_dir=tmp_path / "whole")
    calls = {"n": 0}

    def stop_after_four() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(Exception, match="cancelled"):
        train(whole, manifest_path=manifest, out_dir=tmp_path / "split", cancelled=stop_after_four)
    resumed = train(whole, manifest_path=manifest, out_dir=tmp_path / "split")
    assert resumed.resumed_from == 4
    first = json.loads((done.model_dir / "card.json").read_text())["metrics"]
    second = json.loads((resumed.model_dir / "card.json").read_text())["metrics"]
    assert first["selected_step"] == second["selected_step"]
    a, b = load_weights(done.model_dir), load_weights(resumed.model_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_cleanup_checkpoint_must_not_lose_on_any_copy_of_the_mask() -> None:
    """A mean gain made of big wins on some copies and a loss on one is refused (a gamble on where
    the real rig is); a win on every copy is taken; a diverged net never is."""
    from plateforge_server.training.selection import Best, guarded_score

    start = [30.0, 31.0, 29.0, float("nan")]
    assert guarded_score(31.0, [33.0, 34.0, 28.9, 40.0], start) == float("-inf")
    assert guarded_score(30.2, [30.0, 31.5, 29.1, float("nan")], start) == 30.2
    assert guarded_score(35.0, None, start) == float("-inf")
    best = Best.start(30.0)
    assert not best.offer(10, guarded_score(31.0, [33.0, 34.0, 28.9, 40.0], start), dict)
    assert best.offer(20, guarded_score(30.2, [30.0, 31.5, 29.1, 30.0], start), dict) and best.step == 20
