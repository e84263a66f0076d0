"""Inside bpy: the synthetic shot through the node with cleanup-classical, as a before/after PNG.

before_after.py ADDRESS TOKEN FOLDER PNG
"""

import sys

import bpy
import numpy as np

address, token, folder, png = sys.argv[1:5]
__import__("addon_utils").enable("bl_ext.user_default.plateforge", default_set=True)  # needs bpy first
prefs = bpy.context.preferences.addons["bl_ext.user_default.plateforge"].preferences
prefs.server, prefs.token = address, token

from plateforge.contactsheet import contact_sheet, to_display, write_png  # noqa: E402
from plateforge.exr import read_exr  # noqa: E402
from plateforge.shots.synthetic import make_shot, write_shot  # noqa: E402

shot = make_shot(width=480, height=270, frames=5, first_frame=1, seed=3)
write_shot(shot, f"{folder}/shot")
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 5
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 480, 270, 100
tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
scene.compositing_node_group = tree
out = tree.nodes.new("NodeGroupOutput")
node = tree.nodes.new("PlateforgeCompositorNode")
node.cache_dir = f"{folder}/cache/"
assert bpy.ops.plateforge.set_model(node_name=node.name, model="cleanup-classical") == {"FINISHED"}
for name in ("plate", "mask"):
    image = tree.nodes.new("CompositorNodeImage")
    image.image = bpy.data.images.load(f"{folder}/shot/{name}.0001.exr")
    image.image.source = "SEQUENCE"
    image.frame_start, image.frame_offset, image.frame_duration = 1, 0, 5
    tree.links.new(image.outputs["Image"], node.inputs[name])
tree.links.new(node.outputs["Image"], out.inputs[0])
assert bpy.ops.plateforge.bake(node_name=node.name) == {"FINISHED"}
settings = scene.render.image_settings
settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"
scene.frame_set(3)
scene.render.filepath = f"{folder}/render.0003.exr"
bpy.ops.render.render(write_still=True)
rendered = read_exr(f"{folder}/render.0003.exr")


def rgb(frame):
    return np.dstack([frame.channels[c] for c in "RGB"]).astype(np.float32)


tiles = [to_display(rgb(shot.plates[2])), to_display(rgb(rendered)), to_display(rgb(shot.cleans[2]))]
write_png(png, contact_sheet([tiles]))
print("wrote", png)
