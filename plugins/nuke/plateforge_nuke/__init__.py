"""plateforge inside Nuke: the thin layer between Nuke and the host-agnostic plateforge.hosts.

Only this package (and init.py / menu.py) imports ``nuke``. Everything that is not a Nuke call
(knobs from a model's parameters, the node cache, which frames to send, background work,
server status, the train panel's logic) lives in :mod:`plateforge.hosts` and is tested outside
Nuke. This module must import before the plateforge client is on sys.path: it only uses the
standard library until :func:`bootstrap` has run.
"""

from __future__ import annotations

import os
import sys

import nuke

__all__ = ["GIZMOS", "add_menus", "bootstrap", "lib_dir", "render_write"]

#: The nodes the toolbar offers, with their menu labels.
GIZMOS = (
    ("PF_Cleanup", "Cleanup (paint-out)"),
    ("PF_Matte", "Matte"),
    ("PF_Relight", "Relight / look"),
    ("PF_Model", "Model (any)"),
    ("PF_Train", "Train (keyframes)"),
)

_PLUGIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lib_dir() -> str:
    """Where `plateforge nuke install` put the client for this Python: ``<install>/lib/pyX.Y``."""
    version = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    return os.path.join(os.path.dirname(_PLUGIN), "lib", version)


def bootstrap() -> None:
    """Called from init.py: the client's path, the gizmos' path, the preference knobs."""
    lib = lib_dir()
    if os.path.isdir(lib) and lib not in sys.path:
        sys.path.insert(0, lib)
    nuke.pluginAddPath(os.path.join(_PLUGIN, "gizmos"))
    try:
        import plateforge  # noqa: F401  (checks the client is importable before anything needs it)
    except ImportError as error:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        sys.stderr.write(
            f"plateforge: the client is not installed for this Nuke's Python {version} ({error}); "
            f"run: plateforge nuke install --nuke-python {version}\n"
        )
        return
    from plateforge_nuke import settings

    settings.add_preference_knobs()


def add_menus() -> None:
    """Called from menu.py: a plateforge toolbar and menu, one entry per gizmo, and the server status."""
    toolbar = nuke.toolbar("Nodes")
    if toolbar is None:  # no GUI (nuke -x, nuke -t): nothing to add
        return
    menu = toolbar.addMenu("plateforge")
    for gizmo, label in GIZMOS:
        menu.addCommand(label, f"nuke.createNode({gizmo!r})")
    menu.addSeparator()
    menu.addCommand("Server status…", "import plateforge_nuke.nodes; plateforge_nuke.nodes.show_server_status()")
    menu.addCommand("Refresh selected nodes", "import plateforge_nuke.nodes; plateforge_nuke.nodes.refresh_selected()")


def render_write(write: nuke.Node, first: int, last: int) -> None:
    """Render an internal cache Write for ``first``..``last``. The Writes are saved disabled, so
    that ``nuke -x`` and Render All never run them; they are enabled only for this call."""
    disable = write["disable"]
    disable.setValue(False)
    try:
        nuke.execute(write, first, last)
    finally:
        disable.setValue(True)
