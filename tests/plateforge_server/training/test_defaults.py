"""The tuned settings are the defaults: ``plateforge train --tool X --dataset D --steps N`` trains
with exactly the config the quality bench measures (issue 16.2)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from plateforge.cli.main import main
from plateforge.shots.dailies import make_matte_shot
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.jobs import build_config
from plateforge_server.tools.matte.evaluation import evaluate_matte, write_matte_dataset
from plateforge_server.tools.relight.evaluation import _config as relight_bench_config
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.defaults import TOOL_DEFAULTS, default_warmup
from tests.plateforge_server.jobs.test_jobs import TOKEN, InProcess, training_server
from tests.plateforge_server.training.helpers import write_pairs, write_shot_dataset

BENCH = Path(__file__).resolve().parents[3] / "bench" / "quality.py"
RGB = ("R", "G", "B")
#: What differs between two runs of one tool that is not a training setting.
NOT_SETTINGS = ("name", "device", "dataset", "world_size")


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NOT_SETTINGS}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    with training_server(tmp_path_factory.mktemp("jobs")) as proc:
        yield proc


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pairs = write_pairs(tmp_path_factory.mktemp("pairs"), frames=2, size=32)
    shot = make_matte_shot(width=64, height=48, frames=3, seed=0)
    matte = write_matte_dataset(shot, tmp_path_factory.mktemp("matte"), (0, 2))
    cleanup = write_shot_dataset(tmp_path_factory.mktemp("cleanup"))
    return {"relight": pairs, "look": pairs, "matte": matte, "cleanup": cleanup}


@pytest.mark.parametrize("tool", ["cleanup", "matte", "relight", "look"])
def test_the_cli_trains_with_the_config_the_bench_measures(
    tool: str,
    server: InProcess,
    datasets: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    argv = ["train", "--dataset", str(datasets[tool]), "--tool", tool, "--steps", "2"]
    code = main([*argv, "--server", server.address, "--token", TOKEN])
    out, err = capsys.readouterr()
    assert code == 0, err
    model_dir = Path(out.strip().splitlines()[-1])
    card = json.loads((model_dir / "card.json").read_text())
    trained = _settings(card["training"])
    # The job record the server keeps holds the same config the card was trained with.
    (record,) = [r for r in server.manager.list() if r.model_dir and Path(r.model_dir) == model_dir]
    assert _settings(record.config.to_dict()) == trained

    args = argparse.Namespace(steps=2, device="cpu", params={})
    if tool == "cleanup":
        bench = _bench_module().cleanup_config(args)
    elif tool == "matte":
        bench = bench_config("matte", steps=2, device="cpu")
    else:
        bench = relight_bench_config(args, tool, RGB)
    assert trained == _settings(bench.to_dict())
    assert trained == _settings(build_config(tool=tool, params={"steps": 2}).to_dict())


def test_the_matte_evaluation_trains_with_the_users_config(tmp_path: Path) -> None:
    shot = make_matte_shot(width=64, height=48, frames=3, seed=0)
    evaluate_matte(shot, keyframes=(0, 2), steps=2, device="cpu", work_dir=tmp_path)
    card = json.loads((tmp_path / "run" / "model" / "card.json").read_text())
    assert _settings(card["training"]) == _settings(build_config(tool="matte", params={"steps": 2}).to_dict())


def test_the_tuned_values_are_what_a_user_gets() -> None:
    relight = build_config(tool="relight", params={"steps": 600})
    assert (relight.mse_weight, relight.exposure_jitter, relight.crop, relight.lr) == (4.0, 0.0, 96, 2e-3)
    assert (relight.mse_gain, relight.classical_start, relight.validation_size) == (2.0, True, 1024)
    assert (relight.temporal_weight, relight.equivariant, relight.dead_zone) == (0.0, True, 0.06)
    look = build_config(tool="look", params={"steps": 600})
    assert (look.mse_gain, look.classical_start, look.validation_size) == (0.0, True, 1024)
    assert (look.temporal_weight, look.equivariant, look.dead_zone) == (0.0, False, 0.0)
    cleanup = build_config(tool="cleanup", params={"steps": 600})
    assert (cleanup.lr, cleanup.batch, cleanup.crop, cleanup.loss_mse_weight) == (2e-3, 8, 96, 30.0)
    matte = build_config(tool="matte", params={"steps": 600})
    assert (matte.mse_weight, matte.ssim_weight, matte.lr) == (40.0, 0.0, 2e-3)
    assert relight.warmup == default_warmup(600) == 50 and build_config(tool="look", params={"steps": 30}).warmup == 3
    # Relight and look share the pairs mode, not one entry; a tool with none keeps TrainConfig's values.
    assert TOOL_DEFAULTS["relight"] is not TOOL_DEFAULTS["look"]
    generic = build_config(tool="denoise")
    assert (generic.mode, generic.lr, generic.crop, generic.exposure_jitter) == ("pairs", 2e-4, 128, 1.0)
    # A request's own values win over the tool's.
    assert build_config(tool="relight", params={"lr": 1e-4, "warmup": 7}).lr == 1e-4
    assert build_config(tool="relight", params={"warmup": 7}).warmup == 7
    assert TrainConfig().lr == 2e-4  # the dataclass keeps generic values for tools without an entry
