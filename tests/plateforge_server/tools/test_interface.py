"""The learned tools' one interface: every training mode has its tool, and the trainer asks the tool,
never the mode."""

from __future__ import annotations

import argparse
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


def _mode_branches(path: str, only: tuple[str, ...] = ()) -> list[str]:
    """Comparisons with a ``mode`` (or a config's ``tool``) in the module at ``path`` (under
    server/plateforge_server/training/), within the functions named ``only`` if given."""
    tree = ast.parse((REPO / "server" / "plateforge_server" / "training" / path).read_text(encoding="utf-8"))
    roots: list[ast.AST] = [tree]
    if only:
        roots = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in only]
        assert {n.name for n in roots if isinstance(n, ast.FunctionDef)} == set(only)
    return [
        f"{path}:{node.lineno}"
        for root in roots
        for node in ast.walk(root)
        if isinstance(node, ast.Compare)
        for side in (node.left, *node.comparators)
        if isinstance(side, ast.Attribute)
        and side.attr in ("mode", "tool")
        # a parent model's card names its tool: comparing it with the run's is no per-tool branch
        and not (isinstance(side.value, ast.Name) and side.value.id == "card")
    ]


@pytest.mark.parametrize(
    ("path", "only"),
    [
        pytest.param("engine.py", (), id="engine"),
        pytest.param("data.py", (), id="data"),
        pytest.param("initial.py", (), id="initial"),
        pytest.param("config.py", ("model_tool", "loss_mse_weight"), id="config"),
    ],
)
def test_the_trainer_has_no_per_tool_branches(path: str, only: tuple[str, ...]) -> None:
    """The trainer never compares the run's mode (or tool): what differs between tools (the net,
    the examples, the card's tool and architecture, the loss's default weights) is the tool's."""
    found = _mode_branches(path, only)
    assert not found, f"per-tool branches in the trainer: {found}"


@pytest.mark.parametrize("path", ["config.py", "roles.py"])
def test_the_config_and_the_role_check_keep_no_table_of_modes(path: str) -> None:
    """Which roles a dataset needs, and which config fields only one tool reads, are each tool's
    (roles, config_fields, config_problems): config.py and roles.py compare no mode or tool with a
    name and key no table by mode name."""
    tree = ast.parse((REPO / "server" / "plateforge_server" / "training" / path).read_text(encoding="utf-8"))

    def named(node: ast.expr) -> bool:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(named(e) for e in node.elts)
        return isinstance(node, ast.Constant) and node.value in LEARNED

    found = [
        f"{path}:{node.lineno}"
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.Compare)
            and any(isinstance(s, ast.Attribute) and s.attr in ("mode", "tool") for s in (node.left, *node.comparators))
            and any(named(s) for s in (node.left, *node.comparators))
        )
        or (isinstance(node, ast.Dict) and any(k is not None and named(k) for k in node.keys))
    ]
    assert not found, f"per-mode tables or branches: {found}"


def test_each_tool_declares_its_roles_and_fields() -> None:
    for mode in LEARNED:
        tool = learned_tool(mode)
        assert isinstance(tool.config_fields, frozenset)
        assert tool.config_problems(TrainConfig(mode=mode, base_model="/b")) == []  # type: ignore[arg-type]
        if isinstance(tool, LearnedTool):
            required, optional = tool.roles
            assert required and not set(required) & set(optional) and tool.asked_as, mode


@pytest.mark.parametrize(
    ("fields", "served", "arch", "mse"),
    [
        pytest.param({"mode": "pairs", "tool": "look"}, "look", "unet", 0.0, id="pairs"),
        pytest.param({"mode": "pairs", "tool": "relight", "classical_start": True}, "relight", "affine-unet", 0.0,
                     id="pairs-classical-start"),
        pytest.param({"mode": "inpaint"}, "cleanup", "unet", 0.0, id="inpaint"),
        pytest.param({"mode": "cleanup"}, "cleanup", "guided-unet", 30.0, id="cleanup"),
        pytest.param({"mode": "matte"}, "matte", "matte-unet", 0.0, id="matte"),
        pytest.param({"mode": "cleanup", "mse_weight": 2.5}, "cleanup", "guided-unet", 2.5, id="given-mse"),
    ],
)  # fmt: skip
def test_the_card_tool_architecture_and_loss_weight_are_the_tools(
    fields: dict[str, object], served: str, arch: str, mse: float
) -> None:
    from plateforge_server.training.initial import arch_for

    config = TrainConfig(**fields)  # type: ignore[arg-type]
    tool = learned_tool(config.mode)
    assert isinstance(tool, LearnedTool)
    assert config.model_tool == tool.served_tool(config) == served
    assert arch_for(config) == tool.arch(config) == arch and arch in tool.archs
    assert config.loss_mse_weight == mse


def test_a_lora_run_serves_the_generative_fill() -> None:
    config = TrainConfig(mode="lora", base_model="/nowhere")
    assert config.model_tool == "generative-fill"
    with pytest.raises(UsageError, match="'lora' trains no plateforge net"):
        from plateforge_server.training.initial import arch_for

        arch_for(config)


def test_the_bench_measures_each_tool_through_its_learned_tools_evaluate() -> None:
    from plateforge_server.evaluation.shots import AnalyticShot
    from plateforge_server.tools.interface import Evaluated, evaluated_tool
    from plateforge_server.training.defaults import TOOL_DEFAULTS, mode_for_tool

    for tool in ("cleanup", "matte", "relight", "look"):
        assert tool in TOOL_DEFAULTS
        measured = evaluated_tool(tool)
        assert isinstance(measured, Evaluated) and measured is learned_tool(mode_for_tool(tool))
    with pytest.raises(UsageError, match="does not measure tool 'generative-fill'"):
        evaluated_tool("generative-fill")
    with pytest.raises(UsageError, match=r"measures the pairs tools \['look', 'relight'\], not 'degrain'"):
        shot = AnalyticShot(seed=0, width=32, height=32, frames=2)
        evaluated_tool("degrain").evaluate("degrain", args=argparse.Namespace(), shot=shot, label="x", work_dir=REPO)
    # bench/quality.py names no tool's bench function: it asks the tool.
    source = (REPO / "bench" / "quality.py").read_text(encoding="utf-8")
    from_evaluations = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("plateforge_server.tools.")
        and (node.module or "").endswith(".evaluation")
        for alias in node.names
    }
    assert from_evaluations <= {"METRICS"}  # relight's metric names, recorded with the settings
