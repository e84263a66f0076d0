"""Render one Cycles shot: run by bpy 5.0.1's Python (build/blender-venv), never by plateforge's.

    build/blender-venv/bin/python bench/cycles/generate.py SHOT.json OUT_DIR

``SHOT.json`` is one resolved shot (see :mod:`bench.cycles.spec`): the seed, the size, the
samples and the scene parameters, plus ``textures``: absolute paths of plain RGB EXR textures
(scene-linear photographs, converted by the host driver because Blender cannot read
luminance/chroma or multi-view EXRs). Everything random comes from ``random.Random(seed)``, so
one spec gives one scene.

The scene: a room (back wall, floor, side flat) textured with the photographs, set dressing
(boxes and a pillar wearing photographs, a glossy sphere), a furry ball (particle hair) that
moves across the frame shaking up and down (motion blur), a camera that trucks and pans (depth
of field focused on the subject), a thin wire just in front of the subject and a rig arm nearer
the camera (visible to the camera only, so they cast no shadow and show in no reflection), the
world's ambient light, a key light, and for the relit version a second key light from the other
side and a practical lamp on the back wall (the key light switched off).

Renders per frame, all with the same Cycles seed and the same samples (no adaptive sampling),
denoised (OpenImageDenoise with albedo and normal), written by Blender as multilayer float EXRs
(``render.render(write_still=True)``: scene-linear, no view transform):

* ``rigged``: set, subject and rig (the cleanup plate);
* ``plate``: set and subject, with the AOVs (Depth, Normal, Position, Diffuse Color);
* ``relit``: as ``plate``, the key light moved and the practical switched on;
* ``clean``: the set alone (the subject hidden);
* ``subject``: the subject with every set object a holdout and a transparent film: its
  premultiplied colour and its true coverage (motion blur and defocus included);
* ``rig``: the rig alone, transparent film: its true coverage;
* ``backdrop``: the second set (other photographs, other dressing) seen by the same camera;
* ``still``: the middle frame only, as ``subject`` but with motion blur off (the subject at
  mid-shutter), so a test can see what the blur adds.

Beside them ``cameras.json``: per frame the world-to-camera matrix, the focal length in pixels,
the subject's screen motion (a 2x3 affine, pixel centre -> subject coordinates, mid-shutter), its
centre at mid-shutter and when the shutter opens and closes, and the body's radius and the fur's
length in pixels.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any

import bpy
from mathutils import Matrix, Vector

GENERATOR_VERSION = 1
SUBJECT_RADIUS = 0.32  # metres: the furry ball's body, without the fur
WIRE_FRAMES = 24  # frames the wire takes from wire_from to wire_to
SHAKE = 0.15  # metres the subject jumps up or down each frame: a blur of several pixels
LAYER = "ViewLayer"


def _material_image(name: str, path: str, scale: float, tint: tuple[float, float, float], rough: float) -> Any:
    """A diffuse-ish material wearing a photograph (scene-linear EXR), tiled ``scale`` times."""
    material = bpy.data.materials.new(name)
    nodes = material.node_tree.nodes
    links = material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    image = bpy.data.images.load(path, check_existing=True)
    image.colorspace_settings.name = "Linear Rec.709"
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.interpolation = "Cubic"
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (scale, scale, 1.0)
    coords = nodes.new("ShaderNodeTexCoord")
    multiply = nodes.new("ShaderNodeMix")
    multiply.data_type = "RGBA"
    multiply.blend_type = "MULTIPLY"
    multiply.inputs["Factor"].default_value = 1.0
    multiply.inputs[7].default_value = (*tint, 1.0)
    links.new(coords.outputs["UV"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
    links.new(texture.outputs["Color"], multiply.inputs[6])
    links.new(multiply.outputs[2], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = rough
    return material


def _material_plain(name: str, colour: tuple[float, float, float], rough: float, metallic: float = 0.0) -> Any:
    material = bpy.data.materials.new(name)
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = rough
    bsdf.inputs["Metallic"].default_value = metallic
    return material


def _link(obj: Any, collection: Any) -> Any:
    for old in list(obj.users_collection):
        old.objects.unlink(obj)
    collection.objects.link(obj)
    return obj


def _plane(
    name: str,
    size: tuple[float, float],
    location: tuple[float, float, float],
    rotation: tuple[float, float, float],
    material: Any,
    collection: Any,
) -> Any:
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=location, rotation=rotation)
    obj = bpy.context.active_object
    obj.name = name
    obj.scale = (size[0], size[1], 1.0)
    obj.data.materials.append(material)
    return _link(obj, collection)


def _box(
    name: str,
    size: tuple[float, float, float],
    location: tuple[float, float, float],
    angle: float,
    material: Any,
    collection: Any,
) -> Any:
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=location, rotation=(0.0, 0.0, angle))
    obj = bpy.context.active_object
    obj.name = name
    obj.scale = size
    bpy.ops.object.transform_apply(location=False, rotation=False, scale=True)
    obj.data.materials.append(material)
    return _link(obj, collection)


def _build_set(tag: str, rng: random.Random, textures: list[str], collection: Any) -> None:
    """A room: back wall, floor, a side flat, boxes and a pillar in photographs, a glossy ball."""
    wall = _material_image(f"{tag}-wall", textures[0], rng.uniform(1.0, 1.6), (1.0, 1.0, 1.0), 0.8)
    floor = _material_image(f"{tag}-floor", textures[1 % len(textures)], rng.uniform(2.0, 3.0), (0.8, 0.75, 0.7), 0.6)
    flat = _material_image(f"{tag}-flat", textures[2 % len(textures)], 1.0, (0.9, 0.95, 1.0), 0.7)
    _plane(f"{tag}-wall", (16.0, 7.0), (0.0, 3.5, 3.5), (math.pi / 2, 0.0, 0.0), wall, collection)
    _plane(f"{tag}-floor", (16.0, 14.0), (0.0, -3.5, 0.0), (0.0, 0.0, 0.0), floor, collection)
    _plane(
        f"{tag}-flat",
        (4.0, 5.0),
        (rng.uniform(-5.5, -4.0), 1.5, 2.5),
        (math.pi / 2, 0.0, rng.uniform(0.5, 0.9)),
        flat,
        collection,
    )
    for k in range(4):
        material = _material_image(
            f"{tag}-box{k}",
            textures[(k + 1) % len(textures)],
            rng.uniform(0.6, 1.2),
            (rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)),
            0.5,
        )
        width = rng.uniform(0.5, 1.4)
        height = rng.uniform(0.4, 1.6)
        _box(
            f"{tag}-box{k}",
            (width, rng.uniform(0.5, 1.0), height),
            (rng.uniform(-4.0, 4.0), rng.uniform(0.8, 2.6), height / 2),
            rng.uniform(-0.6, 0.6),
            material,
            collection,
        )
    bpy.ops.mesh.primitive_cylinder_add(
        radius=0.25, depth=6.0, location=(rng.uniform(2.0, 4.5), rng.uniform(1.5, 2.8), 3.0)
    )
    pillar = bpy.context.active_object
    pillar.name = f"{tag}-pillar"
    pillar.data.materials.append(_material_image(f"{tag}-pillar", textures[0], 2.0, (0.7, 0.7, 0.7), 0.4))
    _link(pillar, collection)
    bpy.ops.mesh.primitive_uv_sphere_add(
        radius=0.35, location=(rng.uniform(-2.5, 2.5), rng.uniform(0.5, 1.5), 0.35), segments=32, ring_count=16
    )
    ball = bpy.context.active_object
    ball.name = f"{tag}-ball"
    bpy.ops.object.shade_smooth()
    ball.data.materials.append(
        _material_plain(f"{tag}-ball", (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)), 0.15, 0.6)
    )
    _link(ball, collection)


def _subject(shot: dict[str, Any], rng: random.Random, collection: Any, frames: tuple[int, int]) -> Any:
    """A furry ball moving across the frame (keyed linearly, so the blur is along its path)."""
    radius = SUBJECT_RADIUS
    bpy.ops.mesh.primitive_uv_sphere_add(radius=radius, segments=48, ring_count=24, location=(0.0, 0.0, 0.0))
    body = bpy.context.active_object
    body.name = "subject"
    bpy.ops.object.shade_smooth()
    body.data.materials.append(_material_plain("subject-skin", (0.5, 0.32, 0.25), 0.6))
    hair_material = bpy.data.materials.new("subject-hair")
    nodes = hair_material.node_tree.nodes
    for node in list(nodes):
        if node.type != "OUTPUT_MATERIAL":
            nodes.remove(node)
    hair = nodes.new("ShaderNodeBsdfHairPrincipled")
    hair.parametrization = "MELANIN"
    hair.inputs["Melanin"].default_value = shot["melanin"]
    hair.inputs["Roughness"].default_value = 0.35
    hair_material.node_tree.links.new(hair.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    body.data.materials.append(hair_material)
    modifier = body.modifiers.new("fur", "PARTICLE_SYSTEM")
    settings = modifier.particle_system.settings
    settings.type = "HAIR"
    settings.count = int(shot["hairs"])
    settings.hair_length = float(shot["hair_length"])
    settings.material = 2
    settings.root_radius = 1.0
    settings.tip_radius = 0.0
    settings.radius_scale = 0.005
    settings.use_hair_bspline = True
    settings.display_step = 3
    settings.render_step = 3
    settings.child_type = "INTERPOLATED"
    settings.rendered_child_count = 4
    settings.child_radius = 0.08
    settings.clump_factor = 0.3
    settings.roughness_1 = 0.02
    settings.roughness_endpoint = 0.03
    modifier.particle_system.seed = rng.randrange(1 << 16)
    _link(body, collection)
    # From subject_from (first frame) to subject_to (last frame), shaken up and down by SHAKE
    # metres each frame (as if the rig jiggled it): keyed on the half frames, so each frame's
    # shutter sees one straight stretch of the path and the blur is a straight smear of a known
    # length (its ends are in cameras.json).
    start, end = Vector(shot["subject_from"]), Vector(shot["subject_to"])
    span = max(1, frames[1] - frames[0])
    for k in range(frames[1] - frames[0] + 2):
        t = k - 0.5
        body.location = start.lerp(end, t / span) + Vector((0.0, 0.0, SHAKE * (k % 2)))
        body.rotation_euler = (0.0, 0.0, 0.3 * t / span)
        body.keyframe_insert("location", frame=frames[0] + t)
        body.keyframe_insert("rotation_euler", frame=frames[0] + t)
    _linear(body)
    return body


def _linear(obj: Any) -> None:
    action = obj.animation_data.action
    for curve in _fcurves(action):
        for key in curve.keyframe_points:
            key.interpolation = "LINEAR"
        # the motion goes on past the keyed frames: the first and last frames' shutters are blurred
        # like the others instead of half standing still
        curve.extrapolation = "LINEAR"


def _fcurves(action: Any) -> list[Any]:
    """An action's F-curves (Blender 5 keeps them in layers/strips/channelbags)."""
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                curves.extend(bag.fcurves)
    return curves


def _rig(shot: dict[str, Any], collection: Any, frames: tuple[int, int]) -> list[Any]:
    """A thin wire across the frame and a rig arm: camera-visible only, dark, swaying."""
    dark = _material_plain("rig-dark", (0.02, 0.02, 0.022), 0.5)
    grey = _material_plain("rig-grey", (0.18, 0.18, 0.19), 0.4, 0.3)
    bpy.ops.mesh.primitive_cylinder_add(radius=0.015, depth=9.0, vertices=8, location=(0.0, 0.0, 0.0))
    wire = bpy.context.active_object
    wire.name = "rig-wire"
    wire.data.materials.append(dark)
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    arm = bpy.context.active_object
    arm.name = "rig-arm"
    arm.scale = (0.04, 0.04, 0.9)
    arm.data.materials.append(grey)
    # The wire sways at one speed whatever the shot's length: wire_to is where it is a second
    # (24 frames) after wire_from, so a short shot's wire is not smeared thin by motion blur.
    x0, x1 = shot["wire_from"], shot["wire_to"]
    for frame, x in ((frames[0], x0), (frames[0] + WIRE_FRAMES, x1)):
        wire.location = (x, shot["subject_from"][1] - 0.4, 2.0)  # just in front of the subject: in focus
        wire.rotation_euler = (0.0, shot["wire_tilt"], 0.0)
        wire.keyframe_insert("location", frame=frame)
        wire.keyframe_insert("rotation_euler", frame=frame)
    a0, a1 = shot["arm_from"], shot["arm_to"]
    for frame, where in ((frames[0], a0), (frames[1], a1)):
        arm.location = Vector(where)
        arm.rotation_euler = (0.4, 0.2, 0.0)
        arm.keyframe_insert("location", frame=frame)
        arm.keyframe_insert("rotation_euler", frame=frame)
    for obj in (wire, arm):
        _linear(obj)
        _link(obj, collection)
        # Seen by the camera only: no shadow, no reflection, no bounce light, so the plate
        # without the rig is the exact clean plate.
        obj.visible_diffuse = obj.visible_glossy = obj.visible_transmission = False
        obj.visible_volume_scatter = obj.visible_shadow = False
    return [wire, arm]


def _lights(shot: dict[str, Any], rng: random.Random, collection: Any) -> tuple[Any, list[Any]]:
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (*shot["ambient"], 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0

    def area(name: str, where: list[float], power: float, colour: list[float], size: float) -> Any:
        data = bpy.data.lights.new(name, "AREA")
        data.energy = power
        data.color = colour
        data.size = size
        obj = bpy.data.objects.new(name, data)
        obj.location = where
        target = Vector((0.0, 0.0, 0.9)) - Vector(where)
        obj.rotation_euler = target.to_track_quat("-Z", "Y").to_euler()
        collection.objects.link(obj)
        return obj

    key = area("key", shot["key"], shot["key_power"], shot["key_colour"], 1.5)
    moved = area("key-moved", shot["key_moved"], shot["key_power"], shot["key_moved_colour"], 1.5)
    data = bpy.data.lights.new("practical", "POINT")
    data.energy = shot["practical_power"]
    data.color = shot["practical_colour"]
    data.shadow_soft_size = 0.08
    lamp = bpy.data.objects.new("practical", data)
    lamp.location = shot["practical"]
    collection.objects.link(lamp)
    del rng
    return key, [moved, lamp]


def _camera(shot: dict[str, Any], frames: tuple[int, int]) -> Any:
    data = bpy.data.cameras.new("camera")
    data.lens = shot["lens"]
    data.sensor_width = 36.0
    data.sensor_fit = "HORIZONTAL"
    data.dof.use_dof = True
    data.dof.aperture_fstop = shot["fstop"]
    data.dof.focus_object = bpy.data.objects["subject"]
    camera = bpy.data.objects.new("camera", data)
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.scene.camera = camera
    for frame, where, pan in (
        (frames[0], shot["camera_from"], shot["pan_from"]),
        (frames[1], shot["camera_to"], shot["pan_to"]),
    ):
        camera.location = where
        camera.rotation_euler = (math.radians(86.0), 0.0, math.radians(pan))
        camera.keyframe_insert("location", frame=frame)
        camera.keyframe_insert("rotation_euler", frame=frame)
    _linear(camera)
    return camera


def _setup_render(shot: dict[str, Any]) -> None:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = int(shot["samples"])
    cycles.use_adaptive_sampling = False  # adaptive stopping differs between variants: same samples everywhere
    # Denoised, as production renders are: at these sample counts the noise alone would cap any
    # fill's PSNR near 23 dB. The denoiser couples nearby pixels, so the plate and the clean plate
    # (same seed) now differ by a little near the rig, not bit for bit; far from it they agree.
    cycles.use_denoising = True
    cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    cycles.denoising_prefilter = "ACCURATE"
    cycles.seed = int(shot.get("cycles_seed", shot["seed"]))  # cycles_seed: only for measuring noise
    cycles.use_animated_seed = False
    cycles.max_bounces = 4
    cycles.diffuse_bounces = 2
    cycles.glossy_bounces = 2
    cycles.transmission_bounces = 2
    cycles.transparent_max_bounces = 16
    cycles.caustics_reflective = cycles.caustics_refractive = False
    cycles.sample_clamp_indirect = 2.0  # fireflies would dominate every figure at these sample counts
    cycles.sample_clamp_direct = 20.0
    cycles.blur_glossy = 1.0
    scene.cycles_curves.shape = shot.get("curve_shape", "THICK")
    scene.render.resolution_x = int(shot["width"])
    scene.render.resolution_y = int(shot["height"])
    scene.render.resolution_percentage = 100
    scene.render.use_motion_blur = True
    scene.render.motion_blur_shutter = float(shot["shutter"])
    scene.render.threads_mode = "FIXED"
    scene.render.threads = int(shot.get("threads", 2))
    scene.render.use_persistent_data = True
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"  # Blender 5: a multilayer EXR holds every pass
    settings.file_format = "OPEN_EXR_MULTILAYER"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.exr_codec = "ZIP"
    scene.view_settings.view_transform = "Standard"
    layer = scene.view_layers[0]
    layer.name = LAYER
    layer.use_pass_z = True
    layer.use_pass_normal = True
    layer.use_pass_position = True
    layer.use_pass_diffuse_color = True


def _project(camera: Any, point: Vector, width: int, height: int) -> tuple[float, float]:
    """Pixel coordinates (x right, y down, pixel centres at +0.5) of a world point."""
    local = camera.matrix_world.inverted() @ point
    focal = camera.data.lens / camera.data.sensor_width * width
    return (width / 2 + focal * local.x / -local.z, height / 2 - focal * local.y / -local.z)


def _cameras(
    camera: Any, body: Any, shot: dict[str, Any], frames: tuple[int, int], width: int, height: int
) -> list[dict[str, Any]]:
    scene = bpy.context.scene
    shutter = float(shot["shutter"])
    records = []
    for frame in range(frames[0], frames[1] + 1):
        scene.frame_set(frame)
        centre = body.matrix_world.translation.copy()
        right = camera.matrix_world.to_3x3() @ Vector((1.0, 0.0, 0.0))
        up = camera.matrix_world.to_3x3() @ Vector((0.0, 1.0, 0.0))
        o = _project(camera, centre, width, height)
        a = _project(camera, centre + right * 0.1, width, height)
        b = _project(camera, centre - up * 0.1, width, height)
        # subject coordinates (0,0),(1,0),(0,1) -> pixels; inverted: pixel -> subject coordinates
        forward = Matrix(((a[0] - o[0], b[0] - o[0], o[0]), (a[1] - o[1], b[1] - o[1], o[1]), (0.0, 0.0, 1.0)))
        inverse = forward.inverted()
        focal = camera.data.lens / camera.data.sensor_width * width
        depth = -(camera.matrix_world.inverted() @ centre).z
        # where the subject's centre is when the shutter opens and closes (the camera moves too)
        ends = []
        for time in (frame - shutter / 2, frame + shutter / 2):
            scene.frame_set(math.floor(time), subframe=time - math.floor(time))
            ends.append(list(_project(camera, body.matrix_world.translation.copy(), width, height)))
        scene.frame_set(frame)
        records.append(
            {
                "frame": frame,
                "world_to_camera": [list(row) for row in camera.matrix_world.inverted()],
                "focal_px": focal,
                "subject": [list(inverse[0]), list(inverse[1])],
                "subject_centre_px": list(o),
                "subject_shutter_px": ends,
                # the body's and the fur's size on screen, at the subject's depth
                "subject_radius_px": SUBJECT_RADIUS * focal / depth,
                "hair_px": float(shot["hair_length"]) * focal / depth,
            }
        )
    return records


def main(spec_path: str, out_dir: str) -> None:
    shot = json.loads(Path(spec_path).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    rng = random.Random(int(shot["seed"]))
    first = int(shot["first_frame"])
    frames = (first, first + int(shot["frames"]) - 1)
    scene.frame_start, scene.frame_end = frames
    _setup_render(shot)
    set_a = bpy.data.collections.new("set-a")
    set_b = bpy.data.collections.new("set-b")
    subject_col = bpy.data.collections.new("subject")
    rig_col = bpy.data.collections.new("rig")
    lights_col = bpy.data.collections.new("lights")
    for collection in (set_a, set_b, subject_col, rig_col, lights_col):
        scene.collection.children.link(collection)
    _build_set("a", rng, shot["textures"]["set_a"], set_a)
    _build_set("b", random.Random(int(shot["seed"]) + 7919), shot["textures"]["set_b"], set_b)
    body = _subject(shot, rng, subject_col, frames)
    rig = _rig(shot, rig_col, frames)
    key, relight = _lights(shot, rng, lights_col)
    camera = _camera(shot, frames)
    records = _cameras(camera, body, shot, frames, shot["width"], shot["height"])
    (out / "cameras.json").write_text(json.dumps(records, indent=1))  # rewritten identically on a resume

    set_a_objects, set_b_objects = list(set_a.objects), list(set_b.objects)

    def configure(variant: str) -> None:
        visible = {
            "rigged": (set_a_objects, [body], rig),
            "plate": (set_a_objects, [body], []),
            "relit": (set_a_objects, [body], []),
            "clean": (set_a_objects, [], []),
            "subject": (set_a_objects, [body], []),
            "still": (set_a_objects, [body], []),
            "rig": ([], [], rig),
            "backdrop": (set_b_objects, [], []),
        }[variant]
        shown = {obj.name for group in visible for obj in group}
        for obj in [*set_a_objects, *set_b_objects, body, *rig]:
            obj.hide_render = obj.name not in shown
            obj.is_holdout = False
        key.hide_render = variant == "relit"
        for light in relight:
            light.hide_render = variant != "relit"
        scene.render.film_transparent = variant in ("subject", "rig", "still")
        scene.render.use_motion_blur = variant != "still"
        if variant in ("subject", "still"):
            for obj in set_a_objects:
                obj.is_holdout = True

    for variant in shot["variants"]:
        wanted = [(frames[0] + frames[1]) // 2] if variant == "still" else range(frames[0], frames[1] + 1)
        todo = [f for f in wanted if not (out / f"{variant}.{f:04d}.exr").is_file()]
        if not todo:
            continue  # resumed: this variant was rendered before an interruption
        configure(variant)
        for frame in todo:
            scene.frame_set(frame)
            # Blender writes the file in place: render under a hidden name and rename it when
            # complete, so an interrupted run never leaves a partial frame that a resume would keep.
            temp = out / f".{variant}.{frame:04d}.partial.exr"
            scene.render.filepath = str(temp)
            bpy.ops.render.render(write_still=True)
            os.replace(temp, out / f"{variant}.{frame:04d}.exr")
    (out / "generator.json").write_text(json.dumps({"version": GENERATOR_VERSION, "blender": bpy.app.version_string}))


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    main(args[0], args[1])
