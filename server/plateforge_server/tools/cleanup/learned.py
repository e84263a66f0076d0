r"""The learned cleanup as the trainer, the server and the bench call it: ``"cleanup"`` mode
(:data:`CLEANUP`, a :class:`~plateforge_server.tools.interface.LearnedTool`, net ``guided-unet``).

The shot teaches itself (:mod:`.examples`); the net reads the classical fill beside the plate
(:mod:`.guide`) and its output is residual on that fill, so the untrained net *is*
cleanup-classical, and model selection keeps a checkpoint only if it loses to the classical fill on
no validation copy of the mask. Served, the classical cleanup first aligns the neighbours the call
brings and fills the mask from them, the net corrects that fill, and the result is composited back
with the soft mask.

The cleanup's other learned model, the plain ``"inpaint"`` net (random holes cut in the plate, the
net fills them from the plate around them), is its own tool: :mod:`plateforge_server.tools.inpaint`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from plateforge.errors import FrameError
from plateforge.exr import StrPath
from plateforge.frames import Frame
from plateforge.manifest_format import Manifest
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.modelcard import ModelCard
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.base import ToolCall, passthrough_channels
from plateforge_server.tools.cleanup import classical
from plateforge_server.tools.cleanup.examples import load_guided_data
from plateforge_server.tools.cleanup.guide import FILL_CHANNELS, GUIDE_CHANNELS, SHOWN_CHANNEL, guide_planes
from plateforge_server.tools.interface import NetContract, RawOutput
from plateforge_server.tools.learned import check_plate_net, mask_of, run_net
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, TrainingData
from plateforge_server.training.defaults import CLEANUP_MSE_WEIGHT

if TYPE_CHECKING:
    from plateforge_server.evaluation.shots import BenchShot

__all__ = ["CLEANUP", "GuidedCleanup"]

_RGB = ("R", "G", "B")


class GuidedCleanup(RawOutput):
    """``"cleanup"`` mode: the classical fill, corrected by a net trained on the shot itself."""

    archs = ("guided-unet",)
    default_mse_weight = CLEANUP_MSE_WEIGHT
    roles = (("plate",), ("mask", "target"))
    asked_as = "--tool cleanup"
    config_fields: frozenset[str] = frozenset()

    def config_problems(self, config: TrainConfig) -> list[str]:
        return []

    def served_tool(self, config: TrainConfig) -> str:
        return "cleanup"

    def arch(self, config: TrainConfig) -> str:
        return "guided-unet"

    def evaluate(
        self, tool: str, *, args: argparse.Namespace, shot: BenchShot, label: str, work_dir: Path
    ) -> dict[str, Any]:
        from plateforge_server.tools.cleanup.evaluation import bench_cleanup_shot  # the bench's, not the server's

        return bench_cleanup_shot(shot.cleanup(), label, args=args, work_dir=work_dir)

    def net_config(self, config: TrainConfig) -> UNetConfig:
        return dataclasses.replace(
            UNetConfig.preset(config.size, in_channels=GUIDE_CHANNELS, out_channels=3, residual_from=FILL_CHANNELS),
            residual_gate=SHOWN_CHANNEL,
        )

    def load_data(self, config: TrainConfig, manifest: StrPath | Manifest) -> TrainingData:
        return load_guided_data(config, manifest)

    def fresh_net(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> UNet:
        return UNet(net_config, seed=config.seed)

    def baseline(self, batch: Batch, net: UNet) -> torch.Tensor:
        return batch.inputs[:, list(FILL_CHANNELS)]

    def starts_classical(self, config: TrainConfig) -> bool:
        return True

    def guards_images(self, config: TrainConfig) -> bool:
        # A checkpoint must not lose to the classical fill on any copy of the mask (selection module doc).
        return True

    def contract(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> NetContract:
        radius = config.temporal_radius
        description = (
            f"Cleanup net self-trained on the shot {data.dataset!r}: aligns up to {radius} neighbouring frames each "
            "side and fills the mask from them (inpainting what none shows), as cleanup-classical does, then "
            "corrects that fill with what it learned on this shot. Pixels outside the mask pass through."
        )
        inputs = (
            InputSpec(
                "plate",
                f"The plate, R, G, B scene-linear, with up to {radius} neighbouring frames on each side.",
                channels=_RGB,
                temporal_radius=radius,
            ),
            InputSpec(
                "mask", "What to paint out, per frame: alpha (or the only channel) in [0, 1].", temporal_radius=radius
            ),
        )
        outputs = (OutputSpec("image", "The plate with R, G, B painted out inside the mask.", _RGB),)
        # The classical guide aligns whole frames: it needs more context than the net alone.
        return NetContract("guided-unet", description, inputs, outputs, padding=classical.INFO.padding)

    def serves(self, card: ModelCard) -> bool:
        return card.net.arch in self.archs

    def check_net(self, card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
        return check_plate_net(card, config, source=source)

    def build_net(self, card: ModelCard, config: UNetConfig) -> UNet:
        return UNet(config)

    def run(self, info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
        call.check_cancelled()
        plate = call.frame("plate")
        if not call.has("mask"):
            raise FrameError(f"model {info.name!r} needs a 'mask' input")
        mask = mask_of(call, plate, info)
        if not bool((mask > 0).any()):
            return {"image": passthrough_channels(plate, {})}  # nothing to paint out
        radius = max((spec.temporal_radius for spec in info.inputs if spec.name == "plate"), default=0)
        rgb = plate.stack(_RGB)
        neighbours = [
            (frame.stack(_RGB), classical.mask_array(m)) for frame, m in classical.neighbours_of(call, plate, radius)
        ]
        matrices = classical.align_neighbours(rgb, mask, neighbours, check=call.check_cancelled)
        fill = classical.fill_plate(rgb, mask, neighbours, matrices, check=call.check_cancelled)
        result = run_net(net, device, guide_planes(rgb, mask, fill.rgb, fill.shown), call)
        return {"image": classical.composite(plate, mask, result)}


#: The ``"cleanup"`` entry of :data:`plateforge_server.tools.LEARNED`.
CLEANUP = GuidedCleanup()
