"""plateforge for Blender: a compositor node that runs project-tuned models on a plateforge server.

Add > plateforge in the compositor, choose a model, connect its inputs, Bake, render. The node's
render reads an EXR cache the bake wrote; no Python runs while the compositor evaluates.
Add > plateforge Train trains a model on the server from keyframe pairs of its two inputs.
Saved files hold these nodes as ordinary node groups (see ``portable``), so a Blender without the
add-on opens the file and renders the baked frames.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import farm, node, operators, portable, preferences, train

classes: tuple[type, ...] = (*preferences.classes, *node.classes, *operators.classes, *train.classes)


def _add_menu(self: Any, context: bpy.types.Context) -> None:
    space = context.space_data
    if getattr(space, "tree_type", "") == "CompositorNodeTree":
        self.layout.separator()
        op = self.layout.operator("node.add_node", text="plateforge", icon="NODE_COMPOSITING")
        op.type = node.NODE_IDNAME
        op.use_transform = True
        op = self.layout.operator("node.add_node", text="plateforge Train", icon="NODE_COMPOSITING")
        op.type = train.TRAIN_IDNAME
        op.use_transform = True


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.NODE_MT_add.append(_add_menu)
    portable.register()
    farm.register()


def unregister() -> None:
    farm.unregister()
    portable.unregister()
    bpy.types.NODE_MT_add.remove(_add_menu)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    preferences.stop_local_server()
