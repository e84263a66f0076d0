"""The one interface every learned tool implements, and how the trainer finds a tool's.

A learned tool (:class:`LearnedTool`) is what the training engine, the model runtime and the
benchmark call; they never ask which tool they hold. It says, for a run's
:class:`~plateforge_server.training.config.TrainConfig`:

* what the exported model serves (:meth:`~LearnedTool.served_tool`, the card's tool) and its net
  architecture (:meth:`~LearnedTool.arch`, the card's ``net.arch``);
* the manifest roles its examples read (:attr:`~LearnedTool.roles`), the TrainConfig fields only
  it reads (:attr:`~LearnedTool.config_fields`) and what is wrong with a config's fields for it
  (:meth:`~LearnedTool.config_problems`), so neither the config nor the role check keeps a table
  of modes;
* the MSE weight its loss takes when the config gives none (:attr:`~LearnedTool.default_mse_weight`;
  its other defaults are its entry in :data:`plateforge_server.training.defaults.TOOL_DEFAULTS`);
* which net the run trains (:meth:`~LearnedTool.net_config`, :meth:`~LearnedTool.fresh_net`) and
  what that untrained net outputs (:meth:`~LearnedTool.baseline`: the identity or the tool's
  classical method, which model selection treats as step 0);
* how its training examples are made (:meth:`~LearnedTool.load_data`: licences first, always);
* what the exported model declares (:meth:`~LearnedTool.contract`: architecture, description,
  inputs, outputs, the context the classical part needs);

and, for a model folder being served, how to check and build its net and run it
(:meth:`~LearnedTool.serves`, :meth:`~LearnedTool.check_net`, :meth:`~LearnedTool.build_net`,
:meth:`~LearnedTool.run`). A tool the quality bench measures is also :class:`Evaluated`: the bench
asks it for a shot's figures (:meth:`Evaluated.evaluate`) and never names its evaluation.

The tools are listed by training mode in :data:`plateforge_server.tools.LEARNED` (module names,
imported on first use, so listing a tool costs no import). Adding a tool is one package under
``server/plateforge_server/tools/`` and one line there. A tool with a loop of its own (the generative fill's LoRA)
implements :class:`OwnLoop` instead.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from plateforge.errors import UsageError
from plateforge.exr import StrPath
from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec

if TYPE_CHECKING:
    import torch

    from plateforge.manifest_format import Manifest
    from plateforge_server.evaluation.shots import BenchShot
    from plateforge_server.modelcard import ModelCard
    from plateforge_server.nets.unet import UNet, UNetConfig
    from plateforge_server.tools.base import ToolCall
    from plateforge_server.training.config import TrainConfig
    from plateforge_server.training.data import Batch, TrainingData
    from plateforge_server.training.distributed import Group

__all__ = [
    "Evaluated",
    "LearnedTool",
    "NetContract",
    "OwnLoop",
    "RawOutput",
    "evaluated_tool",
    "learned_tool",
    "learned_tools",
    "serving_tool",
]


@dataclass(frozen=True)
class NetContract:
    """What an exported model declares about itself (its card's contract)."""

    #: The card's ``net.arch``: how the runtime rebuilds and runs it.
    arch: str
    description: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    #: Context pixels the tool's classical part needs around a tile (0: the net's receptive field only).
    padding: int = 0


class RawOutput:
    """:meth:`LearnedTool.delivered` and :meth:`~LearnedTool.scored` for a tool that serves the net's
    output as it is (no clip or bound applied after the net): validation and the loss see it unchanged."""

    def delivered(self, prediction: torch.Tensor) -> torch.Tensor:
        return prediction

    def scored(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return output


@runtime_checkable
class LearnedTool(Protocol):
    """A tool that trains a net on the production's footage and serves it (see the module doc)."""

    #: The net architectures (card ``net.arch``) this tool's models use.
    archs: tuple[str, ...]
    #: The loss's MSE weight when the config gives none (``TrainConfig.mse_weight`` None).
    default_mse_weight: float
    #: The manifest roles its examples read, (required, optional): a dataset without the required
    #: ones is refused before a job exists (:func:`plateforge_server.training.roles.check_roles_fit`).
    roles: tuple[tuple[str, ...], tuple[str, ...]]
    #: How a user asks for this tool on the command line, for the hint when a dataset fits it.
    asked_as: str
    #: The tool fields of TrainConfig (``TOOL_FIELD`` in their metadata) this tool reads; a run of
    #: another tool must leave them at their defaults.
    config_fields: frozenset[str]

    def config_problems(self, config: TrainConfig) -> list[str]:
        """What is wrong with ``config``'s fields for this tool, a sentence each (none: [])."""
        ...

    def served_tool(self, config: TrainConfig) -> str:
        """The tool the model a run with ``config`` exports serves (its card's ``tool``)."""
        ...

    def arch(self, config: TrainConfig) -> str:
        """The ``net.arch`` the card of a run with ``config`` records (one of :attr:`archs`)."""
        ...

    # -- training ---------------------------------------------------------------------------------
    def net_config(self, config: TrainConfig) -> UNetConfig:
        """The net a run with ``config`` trains."""
        ...

    def load_data(self, config: TrainConfig, manifest: StrPath | Manifest) -> TrainingData:
        """The run's training and validation examples; licences are checked before any frame is read."""
        ...

    def fresh_net(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> UNet:
        """The untrained net: the identity, or the tool's classical method."""
        ...

    def baseline(self, batch: Batch, net: UNet) -> torch.Tensor:
        """What the untrained net outputs for ``batch`` (encoded), without running it."""
        ...

    def starts_classical(self, config: TrainConfig) -> bool:
        """Whether the untrained net is the classical method (the card's metrics say so)."""
        ...

    def guards_images(self, config: TrainConfig) -> bool:
        """Whether model selection must not let a checkpoint lose to the start on any one
        validation image (:func:`plateforge_server.training.selection.guarded_score`)."""
        ...

    def contract(self, config: TrainConfig, net_config: UNetConfig, data: TrainingData) -> NetContract:
        """What the exported model declares."""
        ...

    def delivered(self, prediction: torch.Tensor) -> torch.Tensor:
        """The net's (encoded) output as the served model delivers it: what validation scores."""
        ...

    def scored(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The output as the training loss compares it with ``target`` (where the runtime would
        make it exact anyway, the target itself: such pixels cost nothing)."""
        ...

    # -- serving ----------------------------------------------------------------------------------
    def serves(self, card: ModelCard) -> bool:
        """Whether the model ``card`` describes is this tool's (its ``net.arch`` and inputs)."""
        ...

    def check_net(self, card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
        """``config`` if the card's inputs, outputs and net fit this tool's runtime; else
        :class:`~plateforge.errors.ModelIntegrityError` naming ``source``."""
        ...

    def build_net(self, card: ModelCard, config: UNetConfig) -> UNet:
        """An empty net of the card's architecture, for its weights to be loaded into."""
        ...

    def run(self, info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
        """The served model's outputs for one call."""
        ...


@runtime_checkable
class Evaluated(Protocol):
    """A learned tool the quality bench measures: ``bench/quality.py`` calls only this."""

    def evaluate(
        self, tool: str, *, args: argparse.Namespace, shot: BenchShot, label: str, work_dir: Path
    ) -> dict[str, Any]:
        """The figures of tool ``tool`` (a ``plateforge train --tool`` name this learned tool
        trains) on the bench shot ``shot`` (analytic, footage or Cycles: the view of it this tool
        scores), named ``label`` in logs and folders, with the steps ``args`` gives (steps,
        device, params, keys), working in ``work_dir``."""
        ...


@runtime_checkable
class OwnLoop(Protocol):
    """A tool that trains with a loop of its own (not the engine's UNet loop)."""

    #: As :attr:`LearnedTool.config_fields`.
    config_fields: frozenset[str]

    def config_problems(self, config: TrainConfig) -> list[str]:
        """As :meth:`LearnedTool.config_problems`."""
        ...

    def served_tool(self, config: TrainConfig) -> str:
        """The tool the model a run with ``config`` exports serves (its card's ``tool``)."""
        ...

    def train_job(
        self,
        config: TrainConfig,
        *,
        manifest_path: StrPath | Manifest,
        out_dir: StrPath,
        progress: Callable[[Any], None] | None,
        cancelled: Callable[[], bool] | None,
        group: Group | None,
    ) -> Any:
        """Train and export as :func:`plateforge_server.training.engine.train` does."""
        ...


def _load(target: str) -> object:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def learned_tool(mode: str) -> LearnedTool | OwnLoop:
    """The learned tool of training mode ``mode`` (:data:`plateforge_server.tools.LEARNED`)."""
    from plateforge_server.tools import LEARNED

    if mode not in LEARNED:
        raise UsageError(f"no learned tool trains in mode {mode!r}; the modes are {sorted(LEARNED)}")
    tool = _load(LEARNED[mode])
    if not isinstance(tool, (LearnedTool, OwnLoop)):
        raise TypeError(f"{LEARNED[mode]} is not a LearnedTool")
    return tool


def learned_tools() -> list[LearnedTool]:
    """Every learned tool that trains with the engine's loop, in :data:`~plateforge_server.tools.LEARNED` order."""
    from plateforge_server.tools import LEARNED

    return [tool for tool in map(learned_tool, LEARNED) if isinstance(tool, LearnedTool)]


def evaluated_tool(tool: str) -> Evaluated:
    """The learned tool that measures ``tool`` (a ``plateforge train --tool`` name) on the bench;
    :class:`UsageError` for a tool the bench does not measure."""
    from plateforge_server.training.defaults import mode_for_tool  # the trainer imports this module

    learned = learned_tool(mode_for_tool(tool))
    if not isinstance(learned, Evaluated):
        raise UsageError(f"the quality bench does not measure tool {tool!r}")
    return learned


def serving_tool(card: ModelCard) -> LearnedTool | None:
    """The learned tool that serves the model ``card`` describes (None: no tool's)."""
    return next((tool for tool in learned_tools() if tool.serves(card)), None)
