"""Operators: choose a node's model, bake it (progress bar, Esc cancels), bake every node."""

from __future__ import annotations

from typing import Any, ClassVar

import bpy

from . import bake, preferences
from .node import PlateforgeNode, is_plateforge_node, nodes_in, set_model

#: Models the last refresh found, for the model menu: (name, version, description).
_models: list[tuple[str, str, str]] = []


def _node(context: bpy.types.Context, name: str) -> PlateforgeNode | None:
    tree = context.scene.compositing_node_group if context.scene else None
    if tree is None:
        return None
    node = tree.nodes.get(name) if name else getattr(context, "active_node", None)
    return node if node is not None and is_plateforge_node(node) else None


def _fail(op: bpy.types.Operator, error: BaseException, node: Any = None) -> set[str]:
    """Report ``error`` (what to fix, then a details: line) and show the fix on ``node``."""
    from plateforge.messages import explain, user_message

    if node is not None:
        node.status = f"failed: {explain(error).sentence}"
    op.report({"ERROR"}, f"plateforge: {user_message(error)}")
    return {"CANCELLED"}


class PLATEFORGE_OT_refresh_models(bpy.types.Operator):
    """Ask the server which models it offers"""

    bl_idname = "plateforge.refresh_models"
    bl_label = "Refresh plateforge models"
    node_name: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError

        try:
            with preferences.connect(context) as client:
                infos = client.list_models()
        except PlateforgeError as error:
            return _fail(self, error)
        _models[:] = [(i.name, i.version, i.description) for i in infos]
        self.report({"INFO"}, f"plateforge: {len(infos)} models: {', '.join(i.name for i in infos)}")
        return {"FINISHED"}


class PLATEFORGE_OT_set_model(bpy.types.Operator):
    """Use this model: the node's inputs and parameters follow what it declares"""

    bl_idname = "plateforge.set_model"
    bl_label = "Set plateforge model"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}
    node_name: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    model: bpy.props.StringProperty()  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError

        node = _node(context, self.node_name)
        if node is None:
            self.report({"ERROR"}, f"plateforge: no plateforge node {self.node_name!r} in the compositor")
            return {"CANCELLED"}
        try:
            with preferences.connect(context) as client:
                info = client.model_info(self.model)
        except PlateforgeError as error:
            return _fail(self, error)
        set_model(node, info)
        return {"FINISHED"}


class PLATEFORGE_MT_models(bpy.types.Menu):
    bl_idname = "PLATEFORGE_MT_models"
    bl_label = "plateforge models"

    def draw(self, context: bpy.types.Context) -> None:
        node = getattr(context, "node", None)
        if not _models:
            self.layout.operator("plateforge.refresh_models", text="Ask the server", icon="FILE_REFRESH")
        for name, version, _description in _models:
            op = self.layout.operator("plateforge.set_model", text=f"{name} ({version})")
            op.model = f"{name}@{version}"
            op.node_name = node.name if node is not None else ""


class PLATEFORGE_OT_bake(bpy.types.Operator):
    """Send this node's inputs over its frame range to the server and cache the results as EXRs.
    Frames whose inputs and parameters are unchanged are not sent again"""

    bl_idname = "plateforge.bake"
    bl_label = "Bake"
    node_name: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and context.scene.compositing_node_group is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError

        node = _node(context, self.node_name)
        if node is None:
            self.report({"ERROR"}, f"plateforge: no plateforge node {self.node_name!r} in the compositor")
            return {"CANCELLED"}
        try:
            with bake.Connection(lambda: preferences.connect(context)) as connection:
                line = bake.bake_node(context.scene, node, connection)
        except PlateforgeError as error:
            return _fail(self, error, node)
        self.report({"INFO"}, f"plateforge: {line}")
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """The button: capture the inputs here (rendering is main-thread only), then send the stale
        frames on a thread while ``modal`` follows it on timer events; Esc cancels after the frame
        in hand, keeping every whole frame already written."""
        from plateforge.errors import PlateforgeError

        node = _node(context, self.node_name)
        if node is None:
            self.report({"ERROR"}, f"plateforge: no plateforge node {self.node_name!r} in the compositor")
            return {"CANCELLED"}
        self.node_name = node.name
        wm = context.window_manager

        def captured(phase: str, done: int, total: int) -> None:
            node.progress = done / max(total, 1)
            node.status = f"{phase} {done}/{total}"
            wm.progress_update(int(100 * done / max(total, 1)))

        wm.progress_begin(0, 100)
        try:
            plan = bake.plan_bake(context.scene, node, progress=captured)
            if not plan.stale:
                # Everything is current: the cache says so, no server is asked.
                line = bake.finish(context.scene, plan)
                self.report({"INFO"}, f"plateforge: {line}")
                return {"FINISHED"}
            client = preferences.connect(context)
        except PlateforgeError as error:
            return _fail(self, error, node)
        finally:
            wm.progress_end()
        wm.progress_begin(0, 100)
        self._sending = bake.Sending(client, plan)
        node.progress, node.status = 0.0, f"sending 0/{len(plan.stale)}"
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        sending: bake.Sending = self._sending
        if event.type == "ESC":
            sending.cancel.set()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        node = _node(context, self.node_name)
        done, total = sending.progress
        if node is not None:
            node.progress = done / max(total, 1)
            node.status = f"sending {done}/{total}" + (" (cancelling)" if sending.cancel.is_set() else "")
        context.window_manager.progress_update(int(100 * done / max(total, 1)))
        if sending.running:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        return self._end(context, node, sending)

    def _end(self, context: bpy.types.Context, node: PlateforgeNode | None, sending: bake.Sending) -> set[str]:
        from plateforge.errors import CancelledError, PlateforgeError

        error = sending.error
        if node is None:  # deleted while sending: its cache stays, nothing to show it in
            self.report({"WARNING"}, f"plateforge: node {self.node_name!r} was removed during its bake")
            return {"CANCELLED"}
        try:
            line = bake.finish(context.scene, sending.plan, cancelled=isinstance(error, CancelledError))
        except PlateforgeError as failed:  # showing the result failed: that is the news, even after Esc
            if error is None or isinstance(error, CancelledError):
                error = failed
            line = ""
        if isinstance(error, CancelledError):
            self.report({"WARNING"}, f"plateforge: {line}")
            return {"CANCELLED"}
        if error is not None:
            node.status = f"stopped: {error}"
            return _fail(self, error)
        self.report({"INFO"}, f"plateforge: {line}")
        return {"FINISHED"}


class PLATEFORGE_OT_bake_all(bpy.types.Operator):
    """Bake every plateforge node of the scene's compositor"""

    bl_idname = "plateforge.bake_all"
    bl_label = "Bake all plateforge nodes"
    only_marked: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Only 'bake before render' nodes", default=False, options={"SKIP_SAVE"}
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError

        nodes = [n for n in nodes_in(context.scene) if n.bake_before_render or not self.only_marked]
        if not nodes:
            return {"CANCELLED"}
        try:
            with bake.Connection(lambda: preferences.connect(context)) as connection:
                lines = [f"{n.name}: {bake.bake_node(context.scene, n, connection)}" for n in nodes]
        except PlateforgeError as error:
            return _fail(self, error)
        self.report({"INFO"}, "plateforge: " + "; ".join(lines))
        return {"FINISHED"}


classes = (
    PLATEFORGE_OT_refresh_models,
    PLATEFORGE_OT_set_model,
    PLATEFORGE_MT_models,
    PLATEFORGE_OT_bake,
    PLATEFORGE_OT_bake_all,
)
