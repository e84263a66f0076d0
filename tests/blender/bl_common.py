"""Shared by the scripts the Blender tests run with the bpy virtualenv's Python (never pytest's).

The environment (BLENDER_USER_RESOURCES, XDG_CACHE_HOME, TMPDIR) is set by the test before this
Python starts, so every script sees the extension the install script put there.
"""

from __future__ import annotations

import sys
from typing import Any

import bpy

ADDON = "bl_ext.user_default.plateforge"


def enable_addon() -> None:
    import addon_utils  # only importable once bpy is

    addon_utils.enable(ADDON, default_set=True)
    if bpy.types.Node.bl_rna_get_subclass_py("PlateforgeCompositorNode") is None:
        sys.exit("the plateforge node type is not registered")


def enable(address: str, token: str) -> Any:
    """Enable the installed extension (``import bpy`` starts from factory preferences) and point
    it at the server; return its preferences."""
    enable_addon()
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.server, prefs.token = address, token
    return prefs


def disable() -> None:
    import addon_utils

    addon_utils.disable(ADDON)


def compositor(scene: Any, width: int, height: int) -> Any:
    """A compositing node group with a Group Output, at ``width`` x ``height``."""
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    scene.compositing_node_group = tree
    tree.nodes.new("NodeGroupOutput")
    return tree


def image_sequence(tree: Any, first_file: str, first: int, count: int) -> Any:
    node = tree.nodes.new("CompositorNodeImage")
    node.image = bpy.data.images.load(first_file)
    node.image.source = "SEQUENCE"
    node.frame_start, node.frame_offset, node.frame_duration = first, first - 1, count
    return node


def output(tree: Any) -> Any:
    return next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")


def render_exr(scene: Any, path: str) -> None:
    """Compositing-only render of the current frame to a 32-bit float RGBA EXR."""
    settings = scene.render.image_settings
    settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def bake(node: Any) -> None:
    result = bpy.ops.plateforge.bake(node_name=node.name)
    if result != {"FINISHED"}:
        sys.exit(f"bake returned {result}")


# -- pressing a button as Blender's event loop would (headless there is no event loop) ----------


class Event:
    """What Blender hands ``invoke``/``modal``: an event type and value."""

    def __init__(self, type: str, value: str = "NOTHING") -> None:
        self.type, self.value = type, value


class WindowManager:
    """The real window manager, except ``modal_handler_add``: headless Blender has no event loop
    to attach a modal operator to, so the handler is recorded and the test delivers the events."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.handlers: list[Any] = []

    def modal_handler_add(self, operator: Any) -> bool:
        self.handlers.append(operator)
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Context:
    """bpy.context with the stand-in window manager (and optionally an active node)."""

    def __init__(self, window_manager: WindowManager, active_node: Any = None) -> None:
        self.window_manager = window_manager
        self.active_node = active_node

    def __getattr__(self, name: str) -> Any:
        return getattr(bpy.context, name)


class Operator:
    """An operator instance as Blender makes one for a button: its properties, ``report``, and
    the operator class's methods bound to it (Python cannot instantiate a registered operator)."""

    def __init__(self, cls: type, **properties: Any) -> None:
        self._cls = cls
        self.reports: list[tuple[str, str]] = []
        for key, value in properties.items():
            setattr(self, key, value)

    def report(self, kind: set[str], text: str) -> None:
        self.reports.append((next(iter(kind)), text))
        print(f"report {next(iter(kind))}: {text}", flush=True)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._cls, name)
        function = getattr(attribute, "__func__", None) or attribute
        if callable(function) and not isinstance(attribute, type):
            return function.__get__(self)
        return attribute


def operator_class(idname: str) -> type:
    """The registered Python class of operator ``idname`` (``plateforge.bake``)."""
    module, name = idname.split(".")
    cls = getattr(bpy.types, f"{module.upper()}_OT_{name}", None)
    if cls is None:
        sys.exit(f"operator {idname} is not registered")
    return cls  # type: ignore[no-any-return]


def press(
    idname: str,
    *,
    escape_when: Any = None,
    on_tick: Any = None,
    tick: float = 0.005,
    timeout: float = 180.0,
    **properties: Any,
) -> tuple[set[str], Operator]:
    """Press the button of operator ``idname``: ``invoke`` with a click, then while it runs
    modal, ``modal`` with TIMER events (and a mouse move now and then, which it must pass
    through) until it ends; ``escape_when(op)`` true delivers one ESC; ``on_tick(op)`` runs after
    each TIMER event (to watch what the button shows as it goes). Returns the final result and
    the operator (its ``reports``)."""
    import time

    wm = WindowManager(bpy.context.window_manager)
    context = Context(wm)
    op = Operator(operator_class(idname), **properties)
    result = op.invoke(context, Event("LEFTMOUSE", "PRESS"))
    escaped, ticks, started = False, 0, time.monotonic()
    if result == {"RUNNING_MODAL"} and op not in wm.handlers:
        sys.exit(f"{idname} returned RUNNING_MODAL without adding a modal handler")
    # A modal operator runs until modal returns FINISHED or CANCELLED (PASS_THROUGH keeps it).
    while result not in ({"FINISHED"}, {"CANCELLED"}):
        if time.monotonic() - started > timeout:
            sys.exit(f"{idname} still running after {timeout} s")
        if escape_when is not None and not escaped and escape_when(op):
            escaped = True
            result = op.modal(context, Event("ESC", "PRESS"))
            continue
        ticks += 1
        if ticks % 7 == 0 and op.modal(context, Event("MOUSEMOVE")) != {"PASS_THROUGH"}:
            sys.exit(f"{idname} did not pass a mouse move through while running")
        time.sleep(tick)
        result = op.modal(context, Event("TIMER"))
        if on_tick is not None:
            on_tick(op)
    if escape_when is not None and not escaped:
        sys.exit(f"{idname} ended before ESC could be pressed: {result}")
    return result, op
