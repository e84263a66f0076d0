"""The training loss: its L1 and MSE terms count only where the weight says, and cleanup runs add MSE."""

from __future__ import annotations

import pytest
import torch

from plateforge.errors import UsageError
from plateforge_server.training import TrainConfig, training_loss
from plateforge_server.training.config import CLEANUP_MSE_WEIGHT


def test_mse_term_is_the_weighted_mean_square_inside_the_weight() -> None:
    target = torch.zeros(1, 3, 8, 8)
    output = torch.zeros(1, 3, 8, 8)
    output[..., :4, :] = 0.5  # wrong by 0.5 in the top half ...
    output[..., 4:, :] = 9.0  # ... and badly wrong where the weight is 0: that must not count
    weight = torch.zeros(1, 1, 8, 8)
    weight[..., :4, :] = 1.0
    plain = training_loss(output, target, weight, ssim_weight=0.0)
    assert float(plain.total) == pytest.approx(0.5)
    with_mse = training_loss(output, target, weight, ssim_weight=0.0, mse_weight=10.0)
    assert float(with_mse.total) == pytest.approx(0.5 + 10.0 * 0.25)


def test_cleanup_runs_weigh_squared_error_by_default() -> None:
    assert TrainConfig(mode="cleanup").loss_mse_weight == CLEANUP_MSE_WEIGHT > 0
    assert TrainConfig(mode="pairs").loss_mse_weight == 0.0
    assert TrainConfig(mode="pairs", mse_weight=2.0).loss_mse_weight == 2.0
    assert TrainConfig(mode="cleanup", mse_weight=0.0).loss_mse_weight == 0.0
    config = TrainConfig(mode="cleanup", mse_weight=3.0, marker_holes=0.25, soft_holes=False)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UsageError, match="mse_weight"):
        TrainConfig(mse_weight=-1.0)
    with pytest.raises(UsageError, match="marker_holes"):
        TrainConfig(marker_holes=1.5)
