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
