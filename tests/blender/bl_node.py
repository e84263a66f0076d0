"""The node end to end in real Blender: bl_node.py ADDRESS TOKEN FOLDER.

Builds a compositor graph with the node programmatically, bakes, renders compositing-only to EXR
and checks the pixels against the server's own result for the same input; then idempotence, a
parameter change, a model whose inputs differ, and a server that is not there.
"""

import os
import sys

import bpy
import numpy as np
from bl_common import bake, compositor, enable, image_sequence, output, render_exr

address, token, folder = sys.argv[1:4]
prefs = enable(address, token)

from plateforge.batch import SequenceJob, run_sequence  # noqa: E402  (the bundled wheel)
from plateforge.client import Client  # noqa: E402
from plateforge.exr import read_exr, write_exr  # noqa: E402
from plateforge.frames import Frame  # noqa: E402

W, H, FIRST, COUNT = 24, 16, 1, 3
LAST = FIRST + COUNT - 1
rng = np.random.default_rng(7)
os.makedirs(f"{folder}/src", exist_ok=True)
for f in range(FIRST, LAST + 1):
    # Rows differ top to bottom (a ramp) so a flipped image cannot pass; values beyond [0, 1] and
    # below 0 check that no display transform or clamp touches them.
    rgba = rng.normal(0.5, 1.5, (H, W, 4)).astype(np.float32)
    rgba[..., 0] += np.linspace(0.0, 4.0, H, dtype=np.float32)[:, None]
    rgba[..., 3] = 1.0
    write_exr(f"{folder}/src/plate.{f:04d}.exr", Frame.from_array(rgba, frame_number=f))
    mask = np.zeros((H, W, 4), np.float32)
    mask[4:9, 6:14] = 1.0  # a box to paint out
    write_exr(f"{folder}/src/mask.{f:04d}.exr", Frame.from_array(mask, frame_number=f))
    # Blender gets the mask's inverse through an Invert node, so that input is rendered, not linked.
    write_exr(f"{folder}/src/holdout.{f:04d}.exr", Frame.from_array(1.0 - mask, frame_number=f))

scene = bpy.context.scene
scene.frame_start, scene.frame_end = FIRST, LAST
tree = compositor(scene, W, H)
plate = image_sequence(tree, f"{folder}/src/plate.{FIRST:04d}.exr", FIRST, COUNT)
node = tree.nodes.new("PlateforgeCompositorNode")
node.cache_dir = f"{folder}/cache/"
assert bpy.ops.plateforge.set_model(node_name=node.name, model="passthrough") == {"FINISHED"}
assert [s.name for s in node.inputs] == ["plate"], [s.name for s in node.inputs]
tree.links.new(plate.outputs["Image"], node.inputs["plate"])
tree.links.new(node.outputs["Image"], output(tree).inputs[0])


def rendered(frame: int, tag: str) -> Frame:
    scene.frame_set(frame)
    path = f"{folder}/render/{tag}.{frame:04d}.exr"
    render_exr(scene, path)
    return read_exr(path)


def same(a: Frame, b: Frame, what: str, channels: str = "RGBA") -> None:
    for c in channels:
        if not np.array_equal(a.channels[c], b.channels[c]):
            diff = np.abs(a.channels[c].astype(np.float64) - b.channels[c]).max()
            sys.exit(f"{what}: channel {c} differs (max {diff})")


# 1. passthrough: the render through the node is the server's result, which is the plate.
bake(node)
print("status:", node.status)
assert node.status.startswith(f"sent {COUNT} of {COUNT}"), node.status
with Client(address, token=token) as client:
    for f in range(FIRST, LAST + 1):
        source = read_exr(f"{folder}/src/plate.{f:04d}.exr").replace(frame_number=f)
        server = client.process("passthrough", {"plate": source}).outputs["image"]
        out = rendered(f, "passthrough")
        same(out, server, f"frame {f} vs the server's result")
        same(out, source, f"frame {f} vs the plate (orientation)")
print("passthrough ok")

# 2. idempotent: nothing changed, nothing sent.
bake(node)
assert node.status.startswith(f"sent 0 of {COUNT} frames ({COUNT} unchanged)"), node.status
print("idempotent ok:", node.status)

# 3. a model whose inputs differ: the node grows a mask input, keeps its plate link, shows its parameters.
assert bpy.ops.plateforge.set_model(node_name=node.name, model="cleanup-classical") == {"FINISHED"}
assert [s.name for s in node.inputs] == ["plate", "mask"], [s.name for s in node.inputs]
assert node.inputs["plate"].is_linked, "switching models dropped the plate link"
assert {p.param for p in node.params} == {"temporal_radius", "align", "flow", "inpaint_method", "inpaint_radius"}
try:
    bpy.ops.plateforge.bake(node_name=node.name)
    sys.exit("a bake with the mask unconnected did not fail")
except RuntimeError as error:
    assert "input 'mask'" in str(error), error
    print("unconnected input reported:", str(error).strip())
holdout = image_sequence(tree, f"{folder}/src/holdout.{FIRST:04d}.exr", FIRST, COUNT)
invert = tree.nodes.new("CompositorNodeInvert")
invert.inputs["Invert Alpha"].default_value = True
tree.links.new(holdout.outputs["Image"], invert.inputs["Color"])
tree.links.new(invert.outputs["Color"], node.inputs["mask"])
radius = next(p for p in node.params if p.param == "inpaint_radius")
radius.int_value = 3
bake(node)
assert node.status.startswith(f"sent {COUNT} of {COUNT}"), node.status
with Client(address, token=token) as client:
    job = SequenceJob(
        model="cleanup-classical",
        inputs={"plate": f"{folder}/src/plate.####.exr", "mask": f"{folder}/src/mask.####.exr"},
        frames=list(range(FIRST, LAST + 1)),
        outputs={"": f"{folder}/direct/clean.####.exr"},
        params={"inpaint_radius": 3},
    )
    run_sequence(client, job)
for f in range(FIRST, LAST + 1):
    out = rendered(f, "cleanup")
    direct = read_exr(f"{folder}/direct/clean.{f:04d}.exr")
    same(out, direct, f"cleanup frame {f} vs the server's result")
    source = read_exr(f"{folder}/src/plate.{f:04d}.exr")
    assert not np.array_equal(out.channels["R"][4:9, 6:14], source.channels["R"][4:9, 6:14]), "nothing painted out"
inputs = f"{folder}/cache/{node.name}/inputs"
# The plate (an Image node showing an EXR) is sent as the file itself; the mask was rendered.
assert os.path.samefile(f"{inputs}/plate.{FIRST:04d}.exr", f"{folder}/src/plate.{FIRST:04d}.exr")
rendered_mask = read_exr(f"{inputs}/mask.{FIRST:04d}.exr")
expected_mask = read_exr(f"{folder}/src/mask.{FIRST:04d}.exr")
same(rendered_mask, expected_mask, "the mask rendered through the Invert node")
cached = read_exr(f"{folder}/cache/{node.name}/outputs/image.{FIRST:04d}.exr")
assert cached.attributes.get("plateforge/model") == "cleanup-classical", sorted(cached.attributes)
print("cleanup ok, provenance:", cached.attributes.get("plateforge/model"), cached.attributes.get("plateforge/params"))

# 4. one parameter changed: every frame is sent again.
radius.int_value = 4
bake(node)
assert node.status.startswith(f"sent {COUNT} of {COUNT}"), node.status

# 5. no server: a clear report, and Blender carries on.
prefs.server = "127.0.0.1:9"
radius.int_value = 5
try:
    bpy.ops.plateforge.bake(node_name=node.name)
    sys.exit("a bake without a server did not fail")
except RuntimeError as error:
    message = str(error)
    assert "127.0.0.1:9" in message and "unavailable" in message.lower(), message
    print("missing server reported:", message.strip())
prefs.server = address
out = rendered(FIRST, "after")  # still renders (the last good cache)
same(out, read_exr(f"{folder}/cache/{node.name}/outputs/image.{FIRST:04d}.exr"), "render after the failed bake")
print("all ok")
