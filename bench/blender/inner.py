"""The part of bench/blender.py that runs inside bpy: inner.py ADDRESS TOKEN FOLDER FRAMES ROUNDS WIDTH HEIGHT.

Prints one JSON line: per round and frame, the node's bake and render seconds and the direct
client call's seconds for the same frame.
"""

import json
import shutil
import sys
import time

import bpy
import numpy as np

address, token, folder = sys.argv[1:4]
frames, rounds, width, height = (int(a) for a in sys.argv[4:8])
__import__("addon_utils").enable("bl_ext.user_default.plateforge", default_set=True)  # needs bpy first
prefs = bpy.context.preferences.addons["bl_ext.user_default.plateforge"].preferences
prefs.server, prefs.token = address, token

from plateforge.client import Client  # noqa: E402
from plateforge.exr import read_exr, write_exr  # noqa: E402
from plateforge.frames import Frame  # noqa: E402

rng = np.random.default_rng(0)
for f in range(1, frames + 1):
    plate = rng.random((height, width, 4), dtype=np.float32)
    write_exr(f"{folder}/src/plate.{f:04d}.exr", Frame.from_array(plate, frame_number=f), compression="none")

scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, frames
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
scene.compositing_node_group = tree
out = tree.nodes.new("NodeGroupOutput")
image = tree.nodes.new("CompositorNodeImage")
image.image = bpy.data.images.load(f"{folder}/src/plate.0001.exr")
image.image.source = "SEQUENCE"
image.frame_start, image.frame_offset, image.frame_duration = 1, 0, frames
node = tree.nodes.new("PlateforgeCompositorNode")
node.cache_dir = f"{folder}/cache/"
assert bpy.ops.plateforge.set_model(node_name=node.name, model="passthrough") == {"FINISHED"}
tree.links.new(image.outputs["Image"], node.inputs["plate"])
tree.links.new(node.outputs["Image"], out.inputs[0])
settings = scene.render.image_settings
settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"

results = []
with Client(address, token=token) as client:
    for r in range(rounds):
        shutil.rmtree(f"{folder}/cache", ignore_errors=True)
        start = time.perf_counter()
        assert bpy.ops.plateforge.bake(node_name=node.name) == {"FINISHED"}
        bake = (time.perf_counter() - start) / frames
        start = time.perf_counter()
        assert bpy.ops.plateforge.bake(node_name=node.name) == {"FINISHED"}
        check = (time.perf_counter() - start) / frames  # an unchanged re-bake: capture and hash only
        for f in range(1, frames + 1):
            scene.frame_set(f)
            scene.render.filepath = f"{folder}/render/out.{f:04d}.exr"
            start = time.perf_counter()
            bpy.ops.render.render(write_still=True)
            render = time.perf_counter() - start
            # The same render without the node (the plate straight to the output): what any render costs.
            tree.links.new(image.outputs["Image"], out.inputs[0])
            start = time.perf_counter()
            bpy.ops.render.render(write_still=True)
            plain = time.perf_counter() - start
            tree.links.new(node.outputs["Image"], out.inputs[0])
            # The same frame the node sent (as the compositor captured it), straight to the server.
            sent = read_exr(f"{folder}/cache/{node.name}/inputs/plate.{f:04d}.exr").replace(frame_number=f)
            start = time.perf_counter()
            client.process("passthrough", {"plate": sent})
            direct = time.perf_counter() - start
            results.append({"round": r, "frame": f, "bake": bake, "rebake_unchanged": check, "render": render,
                            "render_without_node": plain, "direct": direct})  # fmt: skip
print("RESULT " + json.dumps(results))
