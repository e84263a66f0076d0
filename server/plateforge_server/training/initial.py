"""Initial weights: a run that starts from another plateforge model (``plateforge train --init``).

CopyCat calls it Initial Weights: a show's model trained on one shot is fine-tuned on the next,
instead of starting from the identity. The parent must be a model this run could have made: the
same tool, the same architecture and the same net config (size, channels, residual wiring), so
every tensor loads into the net one-to-one; anything else is refused before a step is taken,
naming what differs. The weights are read only after their hash has been checked against the
parent's card (:func:`plateforge_server.modelcard.load_weights`), and the child's card records the
parent (name, version, weights hash), so lineage runs through fine-tunes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from plateforge.errors import ModelIntegrityError, UsageError
from plateforge_server.modelcard import ModelCard, ParentModel, load_card, load_weights
from plateforge_server.nets.unet import UNetConfig
from plateforge_server.tools.interface import LearnedTool, learned_tool
from plateforge_server.training.config import TrainConfig

__all__ = ["arch_for", "check_parent", "load_initial_weights"]


def arch_for(config: TrainConfig) -> str:
    """The ``net.arch`` the card of a run with ``config`` records, as its tool says (and the
    engine's export writes it)."""
    tool = learned_tool(config.mode)
    if not isinstance(tool, LearnedTool):
        raise UsageError(f"mode {config.mode!r} trains no plateforge net")
    return tool.arch(config)


def _differences(parent: Mapping[str, Any], child: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(parent) | set(child))
    return [f"{k} {parent.get(k)!r} (this run: {child.get(k)!r})" for k in keys if parent.get(k) != child.get(k)]


def check_parent(config: TrainConfig, net_config: UNetConfig) -> ModelCard:
    """The card of ``config.init``, if a run with ``config`` can start from its weights; else a
    :class:`UsageError` naming the parent and what differs (tool, architecture, net config)."""
    if not isinstance(learned_tool(config.mode), LearnedTool):
        raise UsageError(f"init is for plateforge nets; a {config.mode!r} run starts from its base_model pipeline")
    try:
        card = load_card(config.init)
    except ModelIntegrityError as exc:
        raise UsageError(f"init {config.init!r} is not a plateforge model folder: {exc}") from None
    named = f"init model {card.name}@{card.version} ('{config.init}')"
    if card.tool != config.model_tool:
        raise UsageError(
            f"{named} is a {card.tool!r} model; this run trains {config.model_tool!r}: "
            "fine-tune from a model of the same tool"
        )
    arch = arch_for(config)
    if card.net.arch != arch:
        raise UsageError(f"{named} is a {card.net.arch!r} net; this run trains a {arch!r} net")
    differ = _differences(card.net.config, net_config.to_dict())
    if differ:
        raise UsageError(
            f"{named} has another net config than this run ({'; '.join(differ)}): "
            "train with the parent's size and channels"
        )
    return card


def load_initial_weights(config: TrainConfig, net_config: UNetConfig, net: torch.nn.Module) -> ParentModel:
    """Load the checked parent's weights (:func:`check_parent`) into ``net``, every tensor; return
    what the child's card records as its ``parent``."""
    card = check_parent(config, net_config)
    tensors = load_weights(config.init)  # hash-checked against the parent's card before use
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # the config matched but the tensors do not: a damaged or odd parent
        raise UsageError(f"the weights of init model {card.name}@{card.version} do not fit this net: {exc}") from None
    assert card.weights_sha256 is not None  # load_card refuses a card without it
    return ParentModel(name=card.name, version=card.version, sha256=card.weights_sha256)
