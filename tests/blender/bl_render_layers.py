"""A Render Layers pass into the node (Workbench, tiny): bl_render_layers.py ADDRESS TOKEN FOLDER."""

import sys

import bpy
import numpy as np
from bl_common import bake, compositor, enable, output, render_exr

address, token, folder = sys.argv[1:4]
enable(address, token)

from plateforge.client import Client  # noqa: E402
from plateforge.exr import read_exr  # noqa: E402

scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.frame_start = scene.frame_end = 1
tree = compositor(scene, 40, 24)
layers = tree.nodes.new("CompositorNodeRLayers")
node = tree.nodes.new("PlateforgeCompositorNode")
node.cache_dir = f"{folder}/cache/"
assert bpy.ops.plateforge.set_model(node_name=node.name, model="passthrough") == {"FINISHED"}
tree.links.new(layers.outputs["Image"], node.inputs["plate"])

# What the pass itself renders to, for comparison.
tree.links.new(layers.outputs["Image"], output(tree).inputs[0])
render_exr(scene, f"{folder}/pass.exr")
direct = read_exr(f"{folder}/pass.exr")
assert np.ptp(direct.channels["R"]) > 0, "the Render Layers pass is flat: nothing rendered"

tree.links.new(node.outputs["Image"], output(tree).inputs[0])
bake(node)
render_exr(scene, f"{folder}/through-node.exr")
out = read_exr(f"{folder}/through-node.exr")
with Client(address, token=token) as client:
    server = client.process("passthrough", {"plate": direct.replace(frame_number=1)}).outputs["image"]
for c in "RGBA":
    assert np.array_equal(out.channels[c], server.channels[c]), f"channel {c} differs from the server's result"
    assert np.array_equal(out.channels[c], direct.channels[c]), f"channel {c} differs from the pass"
print("render layers ok", node.status)
