"""A farm render: bl_farm.py save FOLDER, then bl_farm.py render FOLDER (server from the environment).

``save`` builds a shot whose node is marked 'bake before render' and saves it unbaked; ``render``
opens it headless, as ``blender -b shot.blend -a`` does, and renders the animation: the extension
must bake the missing frames when the file loads, with no manual step.
"""

import os
import sys

import bpy
import numpy as np
from bl_common import compositor, enable_addon, image_sequence, output

step, folder = sys.argv[1:3]
enable_addon()

from plateforge.exr import read_exr, write_exr  # noqa: E402
from plateforge.frames import Frame  # noqa: E402

if step == "save":
    os.makedirs(f"{folder}/src", exist_ok=True)
    for f in (1, 2):
        rgba = np.random.default_rng(f).random((10, 12, 4)).astype(np.float32)
        write_exr(f"{folder}/src/plate.{f:04d}.exr", Frame.from_array(rgba, frame_number=f))
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 2
    tree = compositor(scene, 12, 10)
    plate = image_sequence(tree, f"{folder}/src/plate.0001.exr", 1, 2)
    node = tree.nodes.new("PlateforgeCompositorNode")
    # The address comes from $PLATEFORGE_SERVER, as on a farm node.
    assert bpy.ops.plateforge.set_model(node_name=node.name, model="passthrough") == {"FINISHED"}
    node.bake_before_render = True
    tree.links.new(plate.outputs["Image"], node.inputs["plate"])
    tree.links.new(node.outputs["Image"], output(tree).inputs[0])
    settings = scene.render.image_settings
    settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"
    scene.render.filepath = f"{folder}/render/out.####.exr"
    bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/shot.blend")
    assert not os.path.exists(f"{folder}/plateforge_cache"), "saving baked"
    print("saved")
else:
    bpy.ops.wm.open_mainfile(filepath=f"{folder}/shot.blend")
    bpy.ops.render.render(animation=True)
    for f in (1, 2):
        out = read_exr(f"{folder}/render/out.{f:04d}.exr")
        source = read_exr(f"{folder}/src/plate.{f:04d}.exr")
        for c in "RGBA":
            assert np.array_equal(out.channels[c], source.channels[c]), f"frame {f} channel {c} differs"
    print("farm ok")
