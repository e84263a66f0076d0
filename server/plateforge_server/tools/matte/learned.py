"""The learned matte as the trainer, the server and the bench call it.

It is a :class:`~plateforge_server.tools.interface.LearnedTool`.

``"matte"`` mode (:data:`MATTE`, net ``matte-unet``): the classical difference key
(:func:`~plateforge_server.tools.matte.classical.key`) is pulled first and the net corrects it,
reading :func:`~plateforge_server.tools.matte.guide.matte_planes` exactly as in training
(:mod:`.examples`: a few keyframe mattes); its one output is residual on the key, so the untrained
net *is* matte-classical. Served, inside the key's unknown band the net's alpha is taken, outside
it the key stands (:func:`~plateforge_server.tools.matte.guide.merge`); the foreground and
composite are then made as matte-classical makes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from plateforge.errors import ModelIntegrityError
from plateforge.exr import StrPath
from plateforge.frames import Frame
from plateforge.manifest_format import Manifest
from plateforge.models import ModelInfo
from plateforge_server.modelcard import ModelCard
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.interface import NetContract
from plateforge_server.tools.learned import run_net
from plateforge_server.tools.matte import classical as matte_classical
from plateforge_server.tools.matte.examples import bounded, delivered, load_matte_data
from plateforge_server.tools.matte.guide import KEY_CHANNEL, MATTE_CHANNELS, band_of, matte_planes, merge
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, TrainingData

if TYPE_CHECKING:
    from plateforge_server.evaluation.shots import BenchShot

__all__ = ["MATTE", "LearnedMatte"]

_RGB = ("R", "G", "B")


class LearnedMatte:
    """``"matte"`` mode: the classical key, corrected by a net trained on a few keyframe mattes."""

    archs = ("matte-unet",)
    default_mse_weight = 0.0  # its runs' MSE weight is in TOOL_DEFAULTS (MATTE_LOSS_SETTINGS)
    roles = (("plate", "clean_plate", "matte"), ())
    asked_as = "--tool matte"
    config_fields: frozenset[str] = frozenset()

    def config_problems(self, config: TrainConfig) -> list[str]:
        return []

    def served_tool(self, config: TrainConfig) -> str:
        return "matte"

    def arch(self, config: TrainConfig) -> str:
        return "matte-unet"

    def evaluate(
        self, tool: str, *, args: argparse.Namespace, shot: BenchShot, label: str, work_dir: Path
    ) -> dict[str, Any]:
        from plateforge_server.tools.matte.evaluation import bench_matte_shot  # the bench's, not the server's

        return bench_matte_shot(shot.matte(), args=args, work_dir=work_dir)

    def net_config(self, config: TrainConfig) -> UNetConfig:
        # Alpha, residual on the classical key.
        return UNetConfig.preset(config.size, in_channels=MATTE_CHANNELS, out_channels=1, residual_from=(KEY_CHANNEL,))

    def load_data(self, config: TrainConfig, manifest: StrPath | Manifest) -> TrainingData:
        return load_matte_data(config, manifest)

    def fresh_net(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> UNet:
        return UNet(net_config, seed=config.seed)

    def baseline(self, batch: Batch, net: UNet) -> torch.Tensor:
        return batch.inputs[:, [KEY_CHANNEL]]

    def starts_classical(self, config: TrainConfig) -> bool:
        return True

    def guards_images(self, config: TrainConfig) -> bool:
        return False

    def delivered(self, prediction: torch.Tensor) -> torch.Tensor:
        return delivered(prediction)  # alpha clipped to [0, 1], as run() delivers it

    def scored(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bounded(output, target)

    def contract(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> NetContract:
        description = (
            f"Matte net trained on {len(data.frames)} keyframe matte(s) of {data.dataset!r}: pulls the classical "
            "clean-plate difference key, corrects it with what it learned from the keyframes, solves the "
            "premultiplied foreground and composites it over a new background when one is given."
        )
        # A learned matte declares what matte-classical declares: it takes and gives the same frames.
        info = matte_classical.INFO
        return NetContract("matte-unet", description, info.inputs, info.outputs, padding=info.padding)

    def serves(self, card: ModelCard) -> bool:
        return card.net.arch in self.archs

    def check_net(self, card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
        """A matte-unet's config, checked: inputs plate and clean_plate (background optional), a net
        reading the matte planes residual on the classical key, outputs alpha and foreground."""
        names = [spec.name for spec in card.inputs]
        required = [spec.name for spec in card.inputs if spec.required]
        outputs = [spec.name for spec in card.outputs]
        fits = (
            sorted(required) == ["clean_plate", "plate"]
            and set(names) <= {"plate", "clean_plate", "background"}
            and config.in_channels == MATTE_CHANNELS
            and config.out_channels == 1
            and config.residual_from == (KEY_CHANNEL,)
            and {"alpha", "foreground"} <= set(outputs)
        )
        if not fits:
            raise ModelIntegrityError(
                f"'{source}': a matte-unet needs inputs 'plate' and 'clean_plate' (and optionally 'background'), a "
                f"net reading {MATTE_CHANNELS} channels and writing 1 residual on channel {KEY_CHANNEL}, and outputs "
                f"'alpha' and 'foreground'; it has inputs {names} (required {required}), {config.in_channels} -> "
                f"{config.out_channels} channels residual on {config.residual_from}, outputs {outputs}"
            )
        return config

    def build_net(self, card: ModelCard, config: UNetConfig) -> UNet:
        return UNet(config)

    def run(self, info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
        """The classical key, corrected by the net (see :mod:`plateforge_server.tools.matte.guide`), then
        the foreground and composite exactly as matte-classical makes them."""
        call.check_cancelled()
        plate = call.frame("plate")
        clean = call.frame("clean_plate", plate.frame_number)
        planes = matte_planes(plate.stack(_RGB), clean.stack(_RGB))
        result = run_net(net, device, planes, call)
        # The net decides the key's unknown band only (its shadow included: matte_guide.band_of).
        alpha = merge(planes[:, :, KEY_CHANNEL], result[:, :, 0], band_of(planes))
        return matte_classical.matte_outputs(call, alpha)


#: The ``"matte"`` entry of :data:`plateforge_server.tools.LEARNED`.
MATTE = LearnedMatte()
