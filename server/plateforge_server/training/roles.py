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
from collections.abc import Iterable, Mapping

from plateforge.errors import UsageError
from plateforge.manifest_format import Manifest
from plateforge_server.training.config import TrainConfig

__all__ = ["KNOWN_TOOLS", "MODE_ROLES", "check_roles_fit"]

#: Roles each mode reads: (required, optional). The data loaders (training/data.py, guided.py,
#: matting.py) pair exactly these; "lora" reads every licensed still, whatever its role.
MODE_ROLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pairs": (("input", "target"), ("mask",)),
    "inpaint": (("plate",), ("mask",)),
    "cleanup": (("plate",), ("mask", "target")),
    "matte": (("plate", "clean_plate", "matte"), ()),
}

#: Tool names with a built-in meaning: those that pick their own mode, then the "pairs" tools
#: the hosts and the model cards know. Used only to suggest a name for a likely typo.
KNOWN_TOOLS = ("cleanup", "matte", "generative-fill", "look", "relight")


#: How to ask for each mode on the command line (the hosts offer the same choices by name).
_HOW_TO_ASK = {
    "pairs": "--tool look, --tool relight, or a tool name of your own",
    "inpaint": "--param mode=inpaint",
    "cleanup": "--tool cleanup",
    "matte": "--tool matte",
}


def _listed(roles: Iterable[str]) -> str:
    names = sorted(roles)
    return ", ".join(f"'{r}'" for r in names) if names else "none"


def check_roles_fit(config: TrainConfig, manifest: Manifest) -> None:
    """Refuse (:class:`UsageError`) a dataset whose roles cannot train ``config.mode``."""
    wanted = MODE_ROLES.get(config.mode)
    if wanted is None:
        return
    required, optional = wanted
    present = {item.role for item in manifest.resolve() if item.role is not None}
    missing = [role for role in required if role not in present]
    if not missing:
        return
    tool = config.tool
    if config.mode == "pairs" and tool not in KNOWN_TOOLS:
        why = f"{tool!r} is not a built-in tool, so it trains input -> target pairs"
    else:
        why = f"tool {tool!r} trains mode {config.mode!r}"
    reads = _listed(required) + (f" (and optionally {_listed(optional)})" if optional else "")
    message = (
        f"dataset {manifest.name!r} ({manifest.path}) cannot train tool {tool!r}: {why}, which needs files "
        f"with the roles {reads}; the dataset has {_listed(present)} (missing {_listed(missing)})"
    )
    close = difflib.get_close_matches(tool, [t for t in KNOWN_TOOLS if t != tool], n=1, cutoff=0.6)
    fits = [mode for mode, (needs, _) in MODE_ROLES.items() if set(needs) <= present and mode != config.mode]
    fits.sort(key=lambda mode: mode not in KNOWN_TOOLS)  # a tool name is simpler to give than a mode
    if close:
        message += f". Did you mean {close[0]}?"
    elif fits:
        message += f". Its roles fit mode {fits[0]!r}: {_HOW_TO_ASK[fits[0]]}"
    raise UsageError(message)
