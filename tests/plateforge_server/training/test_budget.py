"""A wall-clock training budget (``plateforge train --minutes M``, TrainConfig ``minutes``):
the run stops after the step that reaches it, then model selection and export run as usual
(issue 16.2)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from plateforge.cli.main import main
from plateforge.errors import UsageError
from plateforge_server.jobs import build_config
from plateforge_server.training import TrainProgress, train
from plateforge_server.training.config import BUDGET_STEPS, TrainConfig
from tests.plateforge_server.jobs.test_jobs import TOKEN, training_server
from tests.plateforge_server.training.helpers import write_pairs

#: Seconds a budgeted run may take beyond its budget: the last step, validation, selection, export,
#: on a loaded 2-core machine.
MARGIN_S = 30.0


@pytest.mark.parametrize(
    "minutes",
    [pytest.param(0, id="zero"), pytest.param(-1.0, id="negative"), pytest.param(math.nan, id="nan"),
     pytest.param(8 * 24 * 60, id="over-a-week"), pytest.param("ten", id="text")],
)  # fmt: skip
def test_a_bad_budget_is_refused_naming_the_field(minutes: object) -> None:
    with pytest.raises(UsageError, match="minutes"):
        build_config(tool="look", params={"minutes": minutes})  # type: ignore[dict-item]


def test_a_budget_alone_lets_the_budget_end_the_run() -> None:
    assert build_config(tool="look", params={"minutes": 5.0}).steps == BUDGET_STEPS
    both = build_config(tool="look", params={"minutes": 5.0, "steps": 300})
    assert (both.steps, both.minutes) == (300, 5.0)
    assert build_config(tool="look", params={"steps": 300}).minutes is None
    with pytest.raises(UsageError, match="minutes"):
        TrainConfig(minutes=0.0)


def test_the_schedule_follows_the_budget() -> None:
    config = TrainConfig(steps=BUDGET_STEPS, warmup=0, minutes=1.0)
    assert config.lr_at(10, seconds=0.0) == pytest.approx(config.lr, rel=1e-6)
    assert config.lr_at(10, seconds=30.0) == pytest.approx(config.lr * (config.min_lr_ratio + 1) / 2, rel=1e-6)
    assert config.lr_at(10, seconds=60.0) == pytest.approx(config.lr * config.min_lr_ratio)
    # Without a budget, time does not move the schedule.
    assert TrainConfig(steps=100, warmup=0).lr_at(10, seconds=1e6) == TrainConfig(steps=100, warmup=0).lr_at(10)


def test_the_engine_stops_at_the_budget_and_anneals(tmp_path: Path) -> None:
    dataset = write_pairs(tmp_path / "pairs", frames=2, size=32)
    config = TrainConfig(steps=BUDGET_STEPS, warmup=0, minutes=0.4, crop=32, batch=2, validation_every=5)
    seen: list[TrainProgress] = []
    started = time.monotonic()
    result = train(config, manifest_path=dataset, out_dir=tmp_path / "run", progress=seen.append)
    wall = time.monotonic() - started
    budget = config.minutes * 60.0  # type: ignore[operator]
    assert budget <= wall <= budget + MARGIN_S
    assert 1 < result.steps < BUDGET_STEPS and result.steps == seen[-1].step
    assert all(p.eta_seconds is not None and p.eta_seconds <= budget for p in seen)
    assert seen[-1].lr <= config.lr * (config.min_lr_ratio + 0.1)  # the cosine reached (near) its floor
    card = json.loads((result.model_dir / "card.json").read_text())
    assert card["metrics"]["steps"] == result.steps and card["training"]["minutes"] == config.minutes


def test_plateforge_train_minutes_stops_a_real_job_within_budget_and_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    dataset = write_pairs(tmp_path / "pairs", frames=2, size=32)
    minutes = 0.4
    with training_server(tmp_path / "jobs") as server:
        argv = ["train", "--dataset", str(dataset), "--tool", "look", "--minutes", str(minutes)]
        code = main([*argv, "--server", server.address, "--token", TOKEN])
        out, err = capsys.readouterr()
        assert code == 0, err
        (record,) = server.manager.list()
    assert record.state == "SUCCEEDED" and record.config.minutes == minutes
    assert record.config.steps == BUDGET_STEPS and 1 < record.step < BUDGET_STEPS
    assert record.started_at is not None and record.finished_at is not None
    assert minutes * 60 <= record.finished_at - record.started_at <= minutes * 60 + MARGIN_S
    assert "at most 0.4 minutes" in err
    model = Path(out.strip().splitlines()[-1])
    card = json.loads((model / "card.json").read_text())
    assert card["training"]["minutes"] == minutes and card["metrics"]["steps"] == record.step
    assert (model / "model.safetensors").exists() or any(model.glob("*.safetensors"))


@pytest.mark.parametrize("minutes", ["0", "-2", "nan"])
def test_plateforge_train_refuses_a_budget_that_is_not_a_positive_number(
    minutes: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--dataset", str(tmp_path / "d.toml"), "--tool", "look", "--minutes", minutes]
    assert main([*argv, "--server", "127.0.0.1:1", "--token", TOKEN]) != 0
    err = capsys.readouterr().err
    assert "--minutes must be a number of minutes above 0" in err and minutes in err
