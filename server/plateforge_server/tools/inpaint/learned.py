"""The plain inpainting net (``"inpaint"`` mode) as the trainer, the server and the bench call it:
:data:`INPAINT`, a :class:`~plateforge_server.tools.interface.LearnedTool` (net ``unet`` with a
``mask`` input). Random holes are cut in the plate where the shot's roto is clear (:mod:`.examples`)
and the net fills them from the plate zeroed under the hole and the hole mask. Its models serve as
``cleanup`` models (the card's tool).
"""

from __future__ import annotations

import torch

from plateforge.exr import StrPath
from plateforge.frames import Frame
from plateforge.manifest_format import Manifest
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.modelcard import ModelCard
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.inpaint.examples import load_inpaint_data
from plateforge_server.tools.interface import NetContract, RawOutput
from plateforge_server.tools.learned import check_plate_net, run_plain
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, TrainingData

__all__ = ["INPAINT", "Inpaint"]

_RGB = ("R", "G", "B")


class Inpaint(RawOutput):
    """``"inpaint"`` mode: a plain net filling holes from the plate around them."""

    archs = ("unet",)
    default_mse_weight = 0.0
    roles = (("plate",), ("mask",))
    asked_as = "--param mode=inpaint"
    config_fields: frozenset[str] = frozenset()

    def config_problems(self, config: TrainConfig) -> list[str]:
        return []

    def served_tool(self, config: TrainConfig) -> str:
        return "cleanup"

    def arch(self, config: TrainConfig) -> str:
        return "unet"

    def net_config(self, config: TrainConfig) -> UNetConfig:
        # R, G, B with the holes zeroed, and the hole mask.
        return UNetConfig.preset(config.size, in_channels=4, out_channels=3, residual_from=(0, 1, 2))

    def load_data(self, config: TrainConfig, manifest: StrPath | Manifest) -> TrainingData:
        return load_inpaint_data(config, manifest)

    def fresh_net(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> UNet:
        return UNet(net_config, seed=config.seed)

    def baseline(self, batch: Batch, net: UNet) -> torch.Tensor:
        return batch.inputs[:, [0, 1, 2]]

    def starts_classical(self, config: TrainConfig) -> bool:
        return False

    def guards_images(self, config: TrainConfig) -> bool:
        return False

    def contract(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> NetContract:
        description = (
            f"Inpainting net self-trained on dataset {data.dataset!r}: fills the plate inside the mask. "
            "The plate's R, G, B are multiplied by (1 - mask) before the net, as in training."
        )
        inputs = (
            InputSpec("plate", "The plate, R, G, B scene-linear, zeroed where the mask is 1.", channels=_RGB),
            InputSpec("mask", "What to fill: alpha (or the only channel) in [0, 1].", channels=()),
        )
        outputs = (OutputSpec("image", "The plate with the masked region filled.", _RGB),)
        return NetContract("unet", description, inputs, outputs)

    def serves(self, card: ModelCard) -> bool:
        # A plain net that declares a mask input; without one it is a pairs net.
        return card.net.arch in self.archs and "mask" in [spec.name for spec in card.inputs]

    def check_net(self, card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
        return check_plate_net(card, config, source=source)

    def build_net(self, card: ModelCard, config: UNetConfig) -> UNet:
        return UNet(config)

    def run(self, info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
        return run_plain(info, net, device, call)


#: The ``"inpaint"`` entry of :data:`plateforge_server.tools.LEARNED`.
INPAINT = Inpaint()
