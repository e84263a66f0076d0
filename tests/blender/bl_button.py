"""The Bake button as an artist presses it: bl_button.py STEP ADDRESS TOKEN FOLDER.

``bake``: a saved shot; Bake through ``invoke`` and ``modal`` on timer events (as Blender's event
loop runs a button), Esc in the middle, Bake again, a Bake with nothing stale and no server, then
a save: the file holds an ordinary group node, the session a live node again.
``reopen``: the saved shot opened with the add-on: the node is live with its settings.
``unsaved``: Bake and Train in a .blend never saved are refused, asking to save first, and write
nothing into Blender's working directory (the current folder).
"""

import glob
import json
import os
import sys

import bpy
import numpy as np
from bl_common import compositor, disable, enable, image_sequence, output, press, render_exr

step, address, token, folder = sys.argv[1:5]
prefs = enable(address, token)

from plateforge.exr import read_exr, write_exr  # noqa: E402  (the bundled wheel)
from plateforge.frames import Frame  # noqa: E402

# Frames big enough that sending all of them takes far longer than one timer tick, so Esc lands
# while the thread is mid-range.
W, H, FIRST, COUNT = 320, 240, 1, 12
LAST = FIRST + COUNT - 1
NODE = "plateforge"
CACHE = f"{folder}/plateforge_cache/{NODE}"


def build(source: str) -> tuple:
    rng = np.random.default_rng(3)
    os.makedirs(source, exist_ok=True)
    for f in range(FIRST, LAST + 1):
        rgba = rng.normal(0.5, 1.5, (H, W, 4)).astype(np.float32)
        rgba[..., 0] += np.linspace(0.0, 4.0, H, dtype=np.float32)[:, None]  # rows differ: no flip passes
        rgba[..., 3] = 1.0
        write_exr(f"{source}/plate.{f:04d}.exr", Frame.from_array(rgba, frame_number=f))
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = FIRST, LAST
    tree = compositor(scene, W, H)
    plate = image_sequence(tree, f"{source}/plate.{FIRST:04d}.exr", FIRST, COUNT)
    node = tree.nodes.new("PlateforgeCompositorNode")
    assert node.name == NODE, node.name
    assert bpy.ops.plateforge.set_model(node_name=node.name, model="passthrough") == {"FINISHED"}
    tree.links.new(plate.outputs["Image"], node.inputs["plate"])
    tree.links.new(node.outputs["Image"], output(tree).inputs[0])
    return scene, tree


def add_trainer(tree) -> None:
    trainer = tree.nodes.new("PlateforgeTrainNode")
    tree.links.new(tree.nodes["Image"].outputs["Image"], trainer.inputs["input"])
    trainer.keyframes, trainer.tool, trainer.licence = "1, 5", "relight", "CC-BY-4.0"


def trainer_kept() -> None:
    trainer = bpy.context.scene.compositing_node_group.nodes["plateforge Train"]
    assert trainer.bl_idname == "PlateforgeTrainNode", trainer.bl_idname
    assert (trainer.keyframes, trainer.tool, trainer.licence) == ("1, 5", "relight", "CC-BY-4.0"), trainer.tool
    assert trainer.inputs["input"].is_linked, "the Train node lost its link"


def node_kept(kept: dict) -> None:
    """The node is live with the settings it had before the save (``kept``)."""
    node = node_now()
    assert node.bl_idname == "PlateforgeCompositorNode", node.bl_idname
    assert (node.model, node.model_info, node.status) == (kept["model"], kept["model_info"], kept["status"]), node
    assert node.cache_dir == "//plateforge_cache/", node.cache_dir
    assert node.inputs["plate"].is_linked and node.outputs["Image"].is_linked, "links lost"


def node_now():
    return bpy.context.scene.compositing_node_group.nodes[NODE]


def cached_frames() -> list[int]:
    with open(f"{CACHE}/index.json", encoding="utf-8") as handle:
        return sorted(int(f) for f in json.load(handle)["frames"])


def same_as_plate(path: str, frame: int) -> None:
    got, plate = read_exr(path), read_exr(f"{folder}/src/plate.{frame:04d}.exr")
    for c in "RGBA":
        if not np.array_equal(got.channels[c], plate.channels[c]):
            sys.exit(f"{path}: channel {c} differs from the plate of frame {frame}")


if step == "bake":
    scene, tree = build(f"{folder}/src")
    add_trainer(tree)
    bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/shot.blend")
    assert node_now().bl_idname == "PlateforgeCompositorNode", "saving left the node a plain group"

    # 1. Esc once the first frames are written: whole frames only, each one filed.
    def sending_started(op) -> bool:
        return op._sending.progress[0] >= 1

    result, op = press("plateforge.bake", node_name=NODE, escape_when=sending_started)
    assert result == {"CANCELLED"}, (result, op.reports)
    kept = cached_frames()
    print("cancelled:", node_now().status, "kept", kept)
    assert 1 <= len(kept) < COUNT, kept
    assert node_now().status == f"cancelled: {len(kept)} of {COUNT} frames cached and current", node_now().status
    assert op.reports[-1] == ("WARNING", f"plateforge: {node_now().status}"), op.reports
    written = sorted(os.listdir(f"{CACHE}/outputs"))
    assert written == [f"image.{f:04d}.exr" for f in kept], (written, kept)  # no partial or temp file
    for f in kept:
        same_as_plate(f"{CACHE}/outputs/image.{f:04d}.exr", f)
    print("esc ok")

    # 2. Bake again: only what the cancel left out is sent.
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"FINISHED"}, (result, op.reports)
    expected = f"sent {COUNT - len(kept)} of {COUNT} frames ({len(kept)} unchanged) to passthrough"
    assert node_now().status.startswith(expected), node_now().status
    assert cached_frames() == list(range(FIRST, LAST + 1))
    for f in (FIRST, FIRST + COUNT // 2, LAST):
        scene.frame_set(f)
        render_exr(scene, f"{folder}/render/live.{f:04d}.exr")
        same_as_plate(f"{folder}/render/live.{f:04d}.exr", f)
    print("button bake ok:", node_now().status)

    # 3. Everything current and no server: the cache knows, nothing is asked of a server.
    prefs.server = "127.0.0.1:9"
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"FINISHED"}, (result, op.reports)
    assert node_now().status.startswith(f"sent 0 of {COUNT} frames ({COUNT} unchanged)"), node_now().status
    # Headless, INVOKE_DEFAULT runs execute(): the same answer through that path.
    assert bpy.ops.plateforge.bake("INVOKE_DEFAULT", node_name=NODE) == {"FINISHED"}
    assert bpy.ops.plateforge.bake_all() == {"FINISHED"}
    print("offline up to date ok:", node_now().status)

    # One plate frame changed and still no server: the button reports it, the cache stays whole.
    changed = FIRST + 3
    plate = read_exr(f"{folder}/src/plate.{changed:04d}.exr")
    brighter = plate.replace(channels={**plate.channels, "G": plate.channels["G"] * 2})
    write_exr(f"{folder}/src/plate.{changed:04d}.exr", brighter)
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"CANCELLED"} and op.reports[-1][0] == "ERROR", (result, op.reports)
    assert "127.0.0.1:9" in op.reports[-1][1], op.reports
    assert node_now().status.startswith("stopped: "), node_now().status
    assert cached_frames() == list(range(FIRST, LAST + 1)), "a failed bake dropped cached frames"
    prefs.server = address
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"FINISHED"}, (result, op.reports)
    assert node_now().status.startswith(f"sent 1 of {COUNT} frames ({COUNT - 1} unchanged)"), node_now().status
    same_as_plate(f"{CACHE}/outputs/image.{changed:04d}.exr", changed)
    print("changed frame ok:", node_now().status)

    # 4. Saved as an ordinary group node, live again in this session at once.
    kept = {key: getattr(node_now(), key) for key in ("model", "model_info", "status")}
    with open(f"{folder}/kept.json", "w", encoding="utf-8") as handle:
        json.dump(kept, handle)
    groups = sorted(g.name for g in bpy.data.node_groups)
    for _ in range(2):
        bpy.ops.wm.save_mainfile()
    node_kept(kept)
    trainer_kept()
    try:  # a save that fails leaves the nodes live too
        bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/no/such/folder/shot.blend", copy=True)
        sys.exit("saving into a missing folder did not fail")
    except RuntimeError as error:
        print("failed save:", str(error).strip())
    node_kept(kept)
    trainer_kept()
    after = sorted(g.name for g in bpy.data.node_groups)
    assert after == groups, f"saving left stray node groups: {after} (was {groups})"
    print("saved ok")

elif step == "reopen":
    with open(f"{folder}/kept.json", encoding="utf-8") as handle:
        kept = json.load(handle)
    bpy.ops.wm.open_mainfile(filepath=f"{folder}/shot.blend")
    node_kept(kept)
    trainer_kept()
    prefs.server = "127.0.0.1:9"
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"FINISHED"}, (result, op.reports)
    assert node_now().status.startswith(f"sent 0 of {COUNT} frames ({COUNT} unchanged)"), node_now().status
    # Disabling the add-on leaves ordinary groups that still render the cache; enabling wakes them.
    kept["status"] = node_now().status  # the offline bake set it
    disable()
    kinds = {n.name: n.bl_idname for n in bpy.context.scene.compositing_node_group.nodes}
    assert kinds[NODE] == kinds["plateforge Train"] == "CompositorNodeGroup", kinds
    scene = bpy.context.scene
    scene.frame_set(FIRST + 1)
    render_exr(scene, f"{folder}/render/disabled.exr")
    same_as_plate(f"{folder}/render/disabled.exr", FIRST + 1)
    enable(address, token)
    node_kept(kept)
    trainer_kept()
    print("reopen ok:", node_now().status)

elif step == "unsaved":
    assert not bpy.data.filepath
    scene, tree = build(f"{folder}/src")
    before = sorted(os.listdir("."))
    result, op = press("plateforge.bake", node_name=NODE)
    assert result == {"CANCELLED"}, (result, op.reports)
    kind, text = op.reports[-1]
    assert kind == "ERROR" and "save the .blend first" in text, op.reports
    assert node_now().status.startswith("failed: save the .blend first"), node_now().status
    try:
        bpy.ops.plateforge.bake(node_name=NODE)
        sys.exit("an unsaved bake through bpy.ops did not fail")
    except RuntimeError as error:
        assert "save the .blend first" in str(error), error
    trainer = tree.nodes.new("PlateforgeTrainNode")
    tree.links.new(image_sequence(tree, f"{folder}/src/plate.0001.exr", FIRST, COUNT).outputs["Image"],
                   trainer.inputs["input"])  # fmt: skip
    tree.links.new(tree.nodes["Image"].outputs["Image"], trainer.inputs["target"])
    trainer.keyframes, trainer.licence, trainer.rights_holder = "1", "CC-BY-4.0", "Test Pictures"
    result, op = press("plateforge.train", node_name=trainer.name)
    assert result == {"CANCELLED"} and "save the .blend first" in op.reports[-1][1], (result, op.reports)
    assert sorted(os.listdir(".")) == before, "an unsaved bake wrote into the working directory"
    assert not glob.glob(f"{folder}/**/plateforge_*", recursive=True), "an unsaved bake wrote a cache"
    print("unsaved ok:", text)
else:
    sys.exit(f"unknown step {step}")
