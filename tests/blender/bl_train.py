"""Training from Blender, then the trained model in the node: bl_train.py ADDRESS TOKEN FOLDER.

A Train node's two inputs are a plate and an artist's graded version of it; it trains a tiny look
model on two keyframes, and a plateforge node then uses the published model.
"""

import os
import sys

import bpy
import numpy as np
from bl_common import bake, compositor, enable, image_sequence, output, press, render_exr

address, token, folder = sys.argv[1:4]
prefs = enable(address, token)
prefs.artist = "Ana Ruiz"  # the add-on preference a new Train node credits

from plateforge.client import Client  # noqa: E402
from plateforge.exr import read_exr, write_exr  # noqa: E402
from plateforge.frames import Frame  # noqa: E402

W, H = 48, 32
os.makedirs(f"{folder}/src", exist_ok=True)
for f in (1, 2, 3):
    plate = np.random.default_rng(f).random((H, W, 4)).astype(np.float32)
    plate[..., 3] = 1.0
    graded = plate.copy()
    graded[..., :3] *= np.array([0.9, 0.7, 0.5], np.float32)  # the artist's fix
    write_exr(f"{folder}/src/plate.{f:04d}.exr", Frame.from_array(plate, frame_number=f))
    write_exr(f"{folder}/src/graded.{f:04d}.exr", Frame.from_array(graded, frame_number=f))

scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 3
tree = compositor(scene, W, H)
plate = image_sequence(tree, f"{folder}/src/plate.0001.exr", 1, 3)
graded = image_sequence(tree, f"{folder}/src/graded.0001.exr", 1, 3)
trainer = tree.nodes.new("PlateforgeTrainNode")
assert trainer.artist == "Ana Ruiz", trainer.artist  # filled from the preference
tree.links.new(plate.outputs["Image"], trainer.inputs["input"])
tree.links.new(graded.outputs["Image"], trainer.inputs["target"])
trainer.keyframes = "1, 3"
trainer.steps = 4
trainer.model_name = "blender-look"
trainer.licence = "CC-BY-4.0"
trainer.rights_holder = "Test Pictures"
trainer.extra = "batch=1 crop=16 warmup=1 validation_size=32"
trainer.dataset_dir = f"{folder}/train/"

# Without the licence the manifest is refused before anything reaches the server.
trainer.licence = ""
try:
    bpy.ops.plateforge.train("INVOKE_DEFAULT", node_name=trainer.name)  # headless: runs execute()
    sys.exit("training without a licence did not fail")
except RuntimeError as error:
    assert "licence" in str(error), error
    print("unlicensed refused:", str(error).strip())
trainer.licence = "CC-BY-4.0"

# Esc while the button follows a job stops following it; the job runs on on the server.
trainer.model_name = "blender-look-detached"
result, op = press("plateforge.train", node_name=trainer.name, tick=0.05, escape_when=lambda op: True)
assert result == {"CANCELLED"}, (result, op.reports)
assert op.reports[-1][0] == "WARNING" and "runs on" in op.reports[-1][1], op.reports
detached = trainer.job_id
print("esc ok:", op.reports[-1][1])
trainer.model_name = "blender-look"

# The Train button: invoke renders the keyframes and starts the job, modal follows it on timer events.
# Long enough for several loss charts, so the node's image must follow the file as it changes.
trainer.steps = 60
trainer.extra += " preview_every=10 validation_every=10"
charts_seen: set[bytes] = set()


def watch_the_chart(_op: object) -> None:
    image = trainer.loss_image
    if image is not None:
        pixels = np.empty(len(image.pixels), np.float32)
        image.pixels.foreach_get(pixels)
        charts_seen.add(pixels.tobytes())


result, op = press("plateforge.train", node_name=trainer.name, tick=0.05, on_tick=watch_the_chart)
assert result == {"FINISHED"}, (result, op.reports)
assert op.reports[-1][0] == "INFO" and "succeeded" in op.reports[-1][1], op.reports
assert trainer.job_id != detached, "the second press did not start its own job"
print("train status:", trainer.status)
assert "succeeded" in trainer.status, trainer.status
assert trainer.progress == 1.0, trainer.progress

# The node shows the job's two pictures as image datablocks; their pixels go to the test, which
# compares them with the PNGs the server wrote in the job's folder (decoded outside Blender).
for kind in ("loss", "preview"):
    image = getattr(trainer, f"{kind}_image")
    assert image is not None and image.name == f"plateforge {kind} {trainer.name}", (kind, image)
    width, height = image.size
    pixels = np.empty(width * height * image.channels, np.float32)
    image.pixels.foreach_get(pixels)
    np.save(f"{folder}/{kind}-in-blender.npy", pixels.reshape(height, width, image.channels))
assert len(charts_seen) >= 2, f"the node showed {len(charts_seen)} loss chart(s) over a 60-step job"
print("pictures shown:", trainer.job_id)

# The artist is credited on the graded keyframes: in the manifest, and on the trained model's card.
import tomllib  # noqa: E402

from plateforge.jobs_client import TrainingClient  # noqa: E402
from plateforge.modelcards import read_model_card  # noqa: E402

written = tomllib.loads(trainer.dataset().manifest_path.read_text(encoding="utf-8"))
by_role = {s["role"]: s.get("contributors", []) for s in written["sources"]}
assert by_role == {"input": [], "target": [{"name": "Ana Ruiz", "role": "grade"}]}, by_role
with Client(address, token=token) as client:
    trained = TrainingClient(client).get(trainer.job_id).model_dir
people = {c["name"] for s in read_model_card(trained)["sources"] for c in s.get("contributors", [])}
assert people == {"Ana Ruiz"}, people
print("artist credited ok")

node = tree.nodes.new("PlateforgeCompositorNode")
node.cache_dir = f"{folder}/cache/"
assert bpy.ops.plateforge.set_model(node_name=node.name, model="blender-look") == {"FINISHED"}
tree.links.new(plate.outputs["Image"], node.inputs[0])
tree.links.new(node.outputs["Image"], output(tree).inputs[0])
bake(node)
scene.frame_set(2)
render_exr(scene, f"{folder}/render.exr")
out = read_exr(f"{folder}/render.exr")
info_input = node.inputs[0].name
with Client(address, token=token) as client:
    source = read_exr(f"{folder}/src/plate.0002.exr").replace(frame_number=2)
    server = client.process("blender-look", {info_input: source}).outputs
first = next(iter(server.values()))
for c in "RGB":
    assert np.array_equal(out.channels[c], first.channels[c]), f"channel {c} differs from the server's result"
print("train ok: trained model used in the node")
