from __future__ import annotations

from typing import Any

import pytest

from plateforge.errors import UsageError
from plateforge_server.training import TrainConfig


def test_round_trip() -> None:
    config = TrainConfig(mode="inpaint", steps=7, crop=48, lr=3e-4)
    data = config.to_dict()
    assert data["schema"] == "plateforge.trainconfig/1"
    assert TrainConfig.from_dict(data) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"schema": "plateforge.trainconfig/9"}, "known schemas", id="unknown-schema"),
        pytest.param({}, "known schemas", id="no-schema"),
        pytest.param({"schema": "plateforge.trainconfig/1", "colour": 1}, "unknown field", id="unknown-field"),
        pytest.param({"schema": "plateforge.trainconfig/1", "mode": "paint"}, "mode must be", id="bad-mode"),
        pytest.param({"schema": "plateforge.trainconfig/1", "size": "huge"}, "size must be", id="bad-size"),
        pytest.param({"schema": "plateforge.trainconfig/1", "steps": 0}, "steps must be", id="zero-steps"),
        pytest.param({"schema": "plateforge.trainconfig/1", "lr": float("nan")}, "lr must be", id="nan-lr"),
        # A tool's own fields, checked by its learned tool (config_fields, config_problems):
        pytest.param({"schema": "plateforge.trainconfig/1", "mode": "cleanup", "classical_start": True},
                     r'classical_start is for "pairs" mode only; mode is \'cleanup\'', id="classical-start-not-pairs"),
        pytest.param({"schema": "plateforge.trainconfig/1", "mode": "matte", "input_channels": ["R", "G", "B", "Z"]},
                     r'input_channels other than R, G, B are for "pairs" mode only; mode is \'matte\'',
                     id="aovs-not-pairs"),
        pytest.param({"schema": "plateforge.trainconfig/1", "mode": "lora"}, "mode 'lora' needs base_model",
                     id="lora-no-base"),
        pytest.param({"schema": "plateforge.trainconfig/1", "mode": "lora", "base_model": "/b", "init": "/m"},
                     "init is for plateforge nets", id="lora-init"),
    ],
)  # fmt: skip
def test_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        TrainConfig.from_dict(data)


def test_a_tools_own_fields_pass_for_it() -> None:
    TrainConfig(mode="pairs", classical_start=True, input_channels=("R", "G", "B", "N.x"))
    TrainConfig(mode="lora", base_model="/b")


def test_schedule_warms_up_then_decays() -> None:
    config = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    rates = [config.lr_at(step) for step in range(1, 101)]
    assert rates[0] < rates[9] <= 1e-3
    assert rates[10] > rates[50] > rates[-1]
    assert rates[-1] == pytest.approx(1e-4)
