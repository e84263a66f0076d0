"""The learned tools' one interface: every training mode has its tool, and the engine asks the tool,
never the mode."""

from __future__ import annotations

import ast
from typing import get_args

import pytest

from plateforge.errors import UsageError
from plateforge_server.tools import LEARNED
from plateforge_server.tools.interface import LearnedTool, OwnLoop, learned_tool, learned_tools
from plateforge_server.training.config import TrainConfig, TrainMode
from plateforge_server.training.engine import net_config_for
from tests.conftest import REPO


def test_every_training_mode_has_its_learned_tool() -> None:
    assert set(LEARNED) == set(get_args(TrainMode))
    for mode in LEARNED:
        assert isinstance(learned_tool(mode), (LearnedTool, OwnLoop)), mode
    assert len(learned_tools()) == len(LEARNED) - 1  # "lora" trains with its own loop


def test_an_unknown_mode_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"no learned tool trains in mode 'paint'; the modes are \['cleanup'"):
        learned_tool("paint")


@pytest.mark.parametrize(
    ("fields", "in_channels", "out_channels"),
    [
        pytest.param({"mode": "pairs"}, 3, 3, id="pairs"),
        pytest.param({"mode": "pairs", "input_channels": ("R", "G", "B", "N.x")}, 4, 3, id="pairs-aov"),
        pytest.param({"mode": "pairs", "classical_start": True}, 6, 3, id="pairs-classical-start"),
        pytest.param({"mode": "inpaint"}, 4, 3, id="inpaint"),
        pytest.param({"mode": "matte"}, None, 1, id="matte"),
        pytest.param({"mode": "cleanup"}, None, 3, id="cleanup"),
    ],
)
def test_the_net_a_run_trains_is_the_tools(
    fields: dict[str, object], in_channels: int | None, out_channels: int
) -> None:
    config = TrainConfig(**fields)  # type: ignore[arg-type]
    net = net_config_for(config)
    tool = learned_tool(config.mode)
    assert isinstance(tool, LearnedTool) and net == tool.net_config(config)
    assert net.out_channels == out_channels
    if in_channels is not None:
        assert net.in_channels == in_channels


def test_the_engine_has_no_per_tool_branches() -> None:
    """engine.py never compares the run's mode (or tool): what differs between tools is the tool's."""
    source = (REPO / "server" / "plateforge_server" / "training" / "engine.py").read_text(encoding="utf-8")
    found = [
        f"engine.py:{node.lineno}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare)
        for side in (node.left, *node.comparators)
        if isinstance(side, ast.Attribute) and side.attr in ("mode", "tool")
    ]
    assert not found, f"per-tool branches in the engine: {found}"
