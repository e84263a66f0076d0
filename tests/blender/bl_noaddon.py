"""A Blender where the plateforge add-on was never installed opens a saved shot and renders it:
bl_noaddon.py BLEND OUTPUT_PATTERN. Only bpy here (no plateforge): the test compares the frames.
"""

import sys

import bpy

blend, pattern = sys.argv[1:3]
assert bpy.types.Node.bl_rna_get_subclass_py("PlateforgeCompositorNode") is None, "the add-on is here"
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
kinds = sorted(n.bl_idname for n in scene.compositing_node_group.nodes)
print("nodes:", kinds)
settings = scene.render.image_settings
settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"
scene.render.filepath = pattern
bpy.ops.render.render(animation=True)  # an undefined node type here is a signal 11
assert "NodeUndefined" not in kinds and "CompositorNodeGroup" in kinds, kinds
print("rendered without the add-on")
