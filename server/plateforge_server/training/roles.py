"""Whether a dataset can train what was asked: checked when a job is asked for, before it exists.

A tool name the server does not know trains input -> target pairs on purpose (a studio's own
"degrain" or "beauty-fix"), so a typo (``--tool clean``) is not an error by itself; it becomes
one when the dataset's roles cannot feed the mode the name resolves to. Without this check the
job was queued, started, and failed minutes later with a pairing error that did not mention the
tool at all. Here it is refused at once, naming the roles the mode reads, the roles the dataset
has, and the nearest known tool name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from plateforge.errors import UsageError
from plateforge.manifest_format import Manifest
from plateforge_server.tools import LEARNED
from plateforge_server.tools.interface import LearnedTool, learned_tool
from plateforge_server.training.config import TrainConfig

__all__ = ["KNOWN_TOOLS", "check_roles_fit"]

#: Tool names with a built-in meaning: those that pick their own mode, then the "pairs" tools
#: the hosts and the model cards know. Used only to suggest a name for a likely typo.
KNOWN_TOOLS = ("cleanup", "matte", "generative-fill", "look", "relight")


def _listed(roles: Iterable[str]) -> str:
    names = sorted(roles)
    return ", ".join(f"'{r}'" for r in names) if names else "none"


def _role_tools() -> dict[str, LearnedTool]:
    """The learned tools that read manifest roles, by training mode (a tool with a loop of its own,
    the LoRA, reads every licensed still whatever its role)."""
    tools = {mode: learned_tool(mode) for mode in LEARNED}
    return {mode: tool for mode, tool in tools.items() if isinstance(tool, LearnedTool)}


def check_roles_fit(config: TrainConfig, manifest: Manifest) -> None:
    """Refuse (:class:`UsageError`) a dataset whose roles cannot train ``config.mode``, as the
    mode's learned tool declares them (:attr:`~plateforge_server.tools.interface.LearnedTool.roles`)."""
    tools = _role_tools()
    if config.mode not in tools:
        return
    required, optional = tools[config.mode].roles
    present = {item.role for item in manifest.resolve() if item.role is not None}
    missing = [role for role in required if role not in present]
    if not missing:
        return
    tool = config.tool
    if config.tool == tools[config.mode].served_tool(config) and tool not in KNOWN_TOOLS:
        why = f"{tool!r} is not a built-in tool, so it trains input -> target pairs"
    else:
        why = f"tool {tool!r} trains mode {config.mode!r}"
    reads = _listed(required) + (f" (and optionally {_listed(optional)})" if optional else "")
    message = (
        f"dataset {manifest.name!r} ({manifest.path}) cannot train tool {tool!r}: {why}, which needs files "
        f"with the roles {reads}; the dataset has {_listed(present)} (missing {_listed(missing)})"
    )
    close = difflib.get_close_matches(tool, [t for t in KNOWN_TOOLS if t != tool], n=1, cutoff=0.6)
    fits = [mode for mode, learned in tools.items() if set(learned.roles[0]) <= present and mode != config.mode]
    fits.sort(key=lambda mode: mode not in KNOWN_TOOLS)  # a tool name is simpler to give than a mode
    if close:
        message += f". Did you mean {close[0]}?"
    elif fits:
        message += f". Its roles fit mode {fits[0]!r}: {tools[fits[0]].asked_as}"
    raise UsageError(message)
