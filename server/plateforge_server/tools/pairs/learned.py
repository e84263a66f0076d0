"""The learned pairs tool as the trainer, the server and the bench call it: ``"pairs"`` mode
(:data:`PAIRS`, a :class:`~plateforge_server.tools.interface.LearnedTool`), which relight, look and a
studio's own tool names share.

CopyCat-style: a net trained on the keyframes' before/after pairs (:mod:`.examples`), residual on
the plate's R, G, B (net ``unet``: the untrained net is the identity). It may read AOV channels
after R, G, B (``input_channels``). With ``classical_start`` it starts as relight-classical's 3x4
affine fitted on the run's own pairs and corrects it (net ``affine-unet``,
:mod:`plateforge_server.tools.relight.affine_start`): the untrained net *is* the classical
transform, and model selection falls back to it when no checkpoint beats it. The bench measures
relight and look through :mod:`plateforge_server.tools.relight.evaluation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from plateforge.errors import UsageError
from plateforge.exr import StrPath
from plateforge.frames import Frame
from plateforge.manifest_format import Manifest
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.modelcard import ModelCard
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.interface import NetContract, RawOutput
from plateforge_server.tools.learned import check_plate_net, run_plain
from plateforge_server.tools.pairs.examples import load_pairs_data
from plateforge_server.tools.relight.affine_start import ARCH as AFFINE_ARCH
from plateforge_server.tools.relight.affine_start import AffineUNet
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, TrainingData

if TYPE_CHECKING:
    from plateforge_server.evaluation.shots import BenchShot
    from plateforge_server.tools.relight.evaluation import Target

__all__ = ["PAIRS", "Pairs"]

_RGB = ("R", "G", "B")


class Pairs(RawOutput):
    """``"pairs"`` mode: input -> target keyframe pairs (relight, look)."""

    archs = ("unet", AFFINE_ARCH)
    default_mse_weight = 0.0
    roles = (("input", "target"), ("mask",))
    asked_as = "--tool look, --tool relight, or a tool name of your own"
    # The extra inputs (AOVs) and the classical start are this tool's: they shape its net.
    config_fields = frozenset({"input_channels", "classical_start", "equivariant", "dead_zone"})

    def config_problems(self, config: TrainConfig) -> list[str]:
        return []

    def served_tool(self, config: TrainConfig) -> str:
        return config.tool  # "relight", "look", or a studio's own name

    def arch(self, config: TrainConfig) -> str:
        return AFFINE_ARCH if config.classical_start else "unet"

    def evaluate(
        self, tool: str, *, args: argparse.Namespace, shot: BenchShot, label: str, work_dir: Path
    ) -> dict[str, Any]:
        from plateforge_server.tools.relight.evaluation import bench_pairs_shot  # the bench's

        targets: dict[str, Target] = {"relight": "relit", "look": "look"}
        if tool not in targets:
            raise UsageError(f"the quality bench measures the pairs tools {sorted(targets)}, not {tool!r}")
        return bench_pairs_shot(shot.relit(), targets[tool], args=args, work_dir=work_dir)

    def net_config(self, config: TrainConfig) -> UNetConfig:
        in_channels = len(config.input_channels)
        if config.classical_start:  # the classical R, G, B first (affine_start)
            in_channels += 3
        return UNetConfig.preset(
            config.size,
            in_channels=in_channels,
            out_channels=3,
            residual_from=(0, 1, 2),
            equivariant=config.equivariant,
            residual_dead_zone=float(config.dead_zone),
        )

    def load_data(self, config: TrainConfig, manifest: StrPath | Manifest) -> TrainingData:
        return load_pairs_data(config, manifest)

    def fresh_net(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> UNet:
        if config.classical_start:
            return AffineUNet(net_config, seed=config.seed, affine=data.classical_affine)
        return UNet(net_config, seed=config.seed)

    def baseline(self, batch: Batch, net: UNet) -> torch.Tensor:
        if isinstance(net, AffineUNet):  # the fitted affine's result
            with torch.no_grad():
                return net.classical(batch.inputs)
        return batch.inputs[:, [0, 1, 2]]

    def starts_classical(self, config: TrainConfig) -> bool:
        return config.classical_start

    def guards_images(self, config: TrainConfig) -> bool:
        return False

    def contract(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> NetContract:
        channels = tuple(config.input_channels)
        extra = channels[len(_RGB) :]
        arch = "unet"
        description = f"Image-to-image net trained on the input/target pairs of dataset {data.dataset!r}."
        if config.classical_start:
            arch = AFFINE_ARCH
            description += (
                " It applies the 3x4 colour transform relight-classical fits on those pairs, then corrects it with "
                "what it learned (local changes no global transform makes)."
            )
        if extra:
            description += f" It reads the plate's {', '.join(extra)} channels too (AOVs): every frame needs them."
        aovs = f", plus {', '.join(extra)} (AOVs, as rendered)" if extra else ""
        inputs = (InputSpec("plate", f"The plate, R, G, B scene-linear{aovs}.", channels=channels),)
        outputs = (OutputSpec("image", "The plate with the learned change applied.", _RGB),)
        return NetContract(arch, description, inputs, outputs)

    def serves(self, card: ModelCard) -> bool:
        # A plain net with a mask input is the inpaint tool's (an affine-unet with one is
        # refused by check_net, naming why).
        return card.net.arch == AFFINE_ARCH or (card.net.arch == "unet" and "mask" not in [s.name for s in card.inputs])

    def check_net(self, card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
        return check_plate_net(card, config, source=source)

    def build_net(self, card: ModelCard, config: UNetConfig) -> UNet:
        return AffineUNet(config) if card.net.arch == AFFINE_ARCH else UNet(config)

    def run(self, info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
        return run_plain(info, net, device, call)


#: The ``"pairs"`` entry of :data:`plateforge_server.tools.LEARNED` (relight and look share it).
PAIRS = Pairs()
