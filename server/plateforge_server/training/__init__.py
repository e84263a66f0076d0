"""Training on a production's own footage (CopyCat-style pairs, self-supervised paint-out).

One module per job, read in this order: :mod:`.config` (what a run is), :mod:`.data` (licence
check, frames, crops), :mod:`.loss` (L1 + SSIM), :mod:`.checkpoints` (atomic safetensors
checkpoints), :mod:`.engine` (the loop and the export). :mod:`.guided` builds the samples of the
learned cleanup ("cleanup" mode), :mod:`.distributed` makes a run one rank of a torchrun
data-parallel job, and :mod:`.run` is the command line that torchrun (or a farm) starts.
"""

from __future__ import annotations

from plateforge_server.training.checkpoints import (
    Checkpoint,
    CheckpointError,
    latest,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, Sampler, TrainingData, load_training_data
from plateforge_server.training.engine import TrainProgress, TrainResult, net_config_for, train
from plateforge_server.training.loss import training_loss

__all__ = [
    "Batch",
    "Checkpoint",
    "CheckpointError",
    "Sampler",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingData",
    "latest",
    "load_checkpoint",
    "load_latest",
    "load_training_data",
    "net_config_for",
    "save_checkpoint",
    "train",
    "training_loss",
]
