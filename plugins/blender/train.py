"""Training from Blender: a Train node whose two inputs are the plate and the artist's fix.

Mark keyframes on the node, give the footage's licence and rights holder, press **Train**: the
node renders both inputs at the keyframes into a dataset folder, writes its licence manifest and
starts a job on the server (:mod:`plateforge.hosts.training`, as ``plateforge train`` does). The
panel follows the job (step, loss, PSNR) and shows its two training pictures as they stream in:
the loss chart (``loss.png``: training loss and validation PSNR per step, the classical tool's
PSNR as a line) and the preview contact sheet (``preview.png``), each an image datablock the node
points at (``loss_image``, ``preview_image``; open them in an Image Editor to see them full
size). Once it succeeds, the model it
published is in every plateforge node's model menu. The node's output is its ``input``, passed
through natively, so it can sit in a live graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from . import preferences
from .bake import capture, feeding_socket
from .operators import _fail

TRAIN_IDNAME = "PlateforgeTrainNode"
_TOOLS = (("look", "Look", "Grade/look transfer"), ("relight", "Relight", ""), ("matte", "Matte", ""))
_SIZES = (("small", "Small", ""), ("medium", "Medium", ""), ("large", "Large", ""))


def _new_tree(name: str) -> bpy.types.NodeTree:
    tree = bpy.data.node_groups.new(f".plateforge train {name}", "CompositorNodeTree")
    interface = tree.interface
    interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    interface.new_socket("input", description="What the model sees", in_out="INPUT", socket_type="NodeSocketColor")
    interface.new_socket(
        "target", description="The artist's result for it", in_out="INPUT", socket_type="NodeSocketColor"
    )
    group_in = tree.nodes.new("NodeGroupInput")
    group_out = tree.nodes.new("NodeGroupOutput")
    tree.links.new(group_in.outputs["input"], group_out.inputs["Image"])
    return tree


class PlateforgeTrainNode(bpy.types.CompositorNodeCustomGroup):
    """Trains a model on the server from keyframe pairs of its two inputs"""

    bl_idname = TRAIN_IDNAME
    bl_label = "plateforge Train"
    bl_width_default = 280

    keyframes: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Keyframes", description="Frames to learn from: 1001, 1020, 1040-1060x10", default=""
    )
    tool: bpy.props.EnumProperty(name="Tool", items=_TOOLS, default="look")  # type: ignore[valid-type]
    size: bpy.props.EnumProperty(name="Size", items=_SIZES, default="small")  # type: ignore[valid-type]
    steps: bpy.props.IntProperty(name="Steps", default=2000, min=1)  # type: ignore[valid-type]
    model_name: bpy.props.StringProperty(name="Model name", default="")  # type: ignore[valid-type]
    licence: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Licence", description="SPDX id or LicenseRef of the footage, e.g. LicenseRef-studio-sow-12"
    )
    rights_holder: bpy.props.StringProperty(name="Rights holder")  # type: ignore[valid-type]
    artist: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Artist",
        description="Credited as the contributor of the target keyframes (filled from the add-on's preferences)",
    )
    extra: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Config", description="Further training config, as plateforge train --param: lr=1e-4 crop=256"
    )
    dataset_dir: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Dataset", default="//plateforge_train/", subtype="DIR_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"}
    )
    job_id: bpy.props.StringProperty()  # type: ignore[valid-type]
    status: bpy.props.StringProperty()  # type: ignore[valid-type]
    progress: bpy.props.FloatProperty(min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    # The job's training pictures, written beside the dataset as WatchJob streams them.
    loss_image: bpy.props.PointerProperty(type=bpy.types.Image, name="Loss")  # type: ignore[valid-type]
    preview_image: bpy.props.PointerProperty(type=bpy.types.Image, name="Preview")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, ntree: bpy.types.NodeTree) -> bool:
        return bool(ntree.bl_idname == "CompositorNodeTree")

    def init(self, context: bpy.types.Context) -> None:
        from plateforge.hosts.training import artist_name

        self.node_tree = _new_tree(self.name)
        self.artist = artist_name(preferences.preferences(context).artist)

    def copy(self, node: bpy.types.Node) -> None:
        self.node_tree = node.node_tree.copy()
        self.job_id = ""
        self.loss_image = self.preview_image = None  # a copy has no job, so no pictures yet

    def free(self) -> None:
        tree = self.node_tree
        if tree is not None and tree.users <= 1:
            bpy.data.node_groups.remove(tree)

    def draw_buttons(self, context: bpy.types.Context, layout: bpy.types.UILayout) -> None:
        props = ("keyframes", "tool", "size", "steps", "model_name", "licence", "rights_holder", "artist", "extra")
        for prop in props:
            layout.prop(self, prop)
        layout.prop(self, "dataset_dir")
        row = layout.row(align=True)
        row.operator("plateforge.train", icon="PLAY").node_name = self.name
        sub = row.row(align=True)
        sub.enabled = bool(self.job_id)
        sub.operator("plateforge.cancel_training", text="", icon="CANCEL").node_name = self.name
        if self.status:
            layout.progress(factor=self.progress, text=self.status)
        for image in (self.loss_image, self.preview_image):
            if image is not None:
                layout.label(text=image.name)
                layout.template_icon(icon_value=layout.icon(image), scale=8.0)

    def draw_buttons_ext(self, context: bpy.types.Context, layout: bpy.types.UILayout) -> None:
        self.draw_buttons(context, layout)

    def dataset(self) -> Any:
        from plateforge.hosts.blender_bake import resolve_folder
        from plateforge.hosts.training import KeyframeDataset

        what = f"the training dataset of node {self.name!r}"
        root = resolve_folder(self.dataset_dir, blend_file=bpy.data.filepath, what=what)
        return KeyframeDataset(Path(root) / bpy.path.clean_name(self.name))

    def request(self) -> Any:
        from plateforge.hosts.training import TrainingRequest, artist_name, parse_keyframes
        from plateforge.models import parse_params

        extra = parse_params(self.extra)
        return TrainingRequest(
            dataset=self.dataset(),
            keyframes=tuple(parse_keyframes(self.keyframes)),
            licence=self.licence,
            rights_holder=self.rights_holder,
            tool=self.tool,
            steps=self.steps,
            size=self.size,
            model_name=self.model_name,
            extra=extra,
            artist=self.artist.strip() or artist_name(preferences.preferences().artist),
        )


def _train_node(context: bpy.types.Context, name: str) -> PlateforgeTrainNode | None:
    tree = context.scene.compositing_node_group if context.scene else None
    node = tree.nodes.get(name) if tree is not None else None
    return node if getattr(node, "bl_idname", "") == TRAIN_IDNAME else None


def start(context: bpy.types.Context, node: PlateforgeTrainNode, client: Any) -> Any:
    """Render the keyframe pairs, write the manifest, queue the job; return it (main thread)."""
    from plateforge.errors import UsageError
    from plateforge.hosts.training import start_job

    request = node.request()
    sockets = {}
    for name in ("input", "target"):
        source = feeding_socket(node.inputs[name])
        if source is None:
            raise UsageError(f"node {node.name!r}: connect its {name!r} input")
        sockets[name] = source
    patterns = {"input": request.dataset.input_pattern, "target": request.dataset.target_pattern}
    capture(context.scene, sockets, list(request.keyframes), patterns)
    job = start_job(client, request)
    node.job_id = job.id
    node.status, node.progress = f"job {job.id}: {job.state.lower()}", 0.0
    return job


def _show(node: PlateforgeTrainNode, monitor: Any) -> None:
    job = monitor.job
    if job is not None:
        node.status = monitor.status()
        node.progress = job.step / max(job.steps, 1)
    stamp = f"{job.id if job is not None else ''}:{monitor.previews_written}:{monitor.loss_charts_written}"
    preview = node.dataset().preview_path
    if monitor.previews_written and preview.exists():
        node.preview_image = _picture(f"plateforge preview {node.name}", preview, stamp)
    loss = monitor.loss_path
    if monitor.loss_charts_written and loss is not None and loss.exists():
        node.loss_image = _picture(f"plateforge loss {node.name}", loss, stamp)


def _picture(name: str, path: Path, stamp: str) -> bpy.types.Image:
    """The image datablock ``name`` showing the PNG at ``path``: loaded, or reloaded when the
    monitor has written the file again since (``stamp``: job and counts; the timer ticks far more
    often than pictures arrive)."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(str(path), check_existing=False)
        image.name = name
    elif image.get("plateforge_stamp") != stamp:
        if bpy.path.abspath(image.filepath) != str(path):
            image.filepath = str(path)
        image.reload()
        if image.preview is not None:
            image.preview.reload()  # the node draws the preview icon: refresh it with the pixels
    image["plateforge_stamp"] = stamp
    return image


class PLATEFORGE_OT_train(bpy.types.Operator):
    """Render the keyframe pairs, start a training job on the server and follow it"""

    bl_idname = "plateforge.train"
    bl_label = "Train"
    node_name: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    wait: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Wait", description="Block until the job ends (scripts, headless)", default=True, options={"SKIP_SAVE"}
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError
        from plateforge.hosts.training import TrainingMonitor
        from plateforge.jobs_client import TrainingClient

        node = _train_node(context, self.node_name)
        if node is None:
            self.report({"ERROR"}, f"plateforge: no Train node {self.node_name!r} in the compositor")
            return {"CANCELLED"}
        try:
            with preferences.connect(context) as client:
                job = start(context, node, client)
                if not self.wait:
                    self.report({"INFO"}, f"plateforge: started job {job.id}")
                    return {"FINISHED"}
                monitor = TrainingMonitor(preview_path=node.dataset().preview_path)
                for event in TrainingClient(client).watch(job.id, preview_interval=1.0):
                    monitor.feed(event)
                _show(node, monitor)
        except PlateforgeError as error:
            return _fail(self, error, node)
        final = monitor.job
        if final is None or final.state != "SUCCEEDED":
            self.report({"ERROR"}, f"plateforge: {node.status}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"plateforge: {node.status}")
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        from plateforge.errors import PlateforgeError
        from plateforge.hosts.training import TrainingMonitor, watch_in_background

        node = _train_node(context, self.node_name)
        if node is None:
            self.report({"ERROR"}, f"plateforge: no Train node {self.node_name!r} in the compositor")
            return {"CANCELLED"}
        client = None
        try:
            client = preferences.connect(context)
            job = start(context, node, client)
        except PlateforgeError as error:
            if client is not None:
                client.close()
            return _fail(self, error, node)
        # The watch runs on a thread; a timer copies its state into the node (Blender data is
        # main-thread only). Esc stops watching; the job runs on (Cancel stops it).
        self._client = client
        self._monitor = TrainingMonitor(preview_path=node.dataset().preview_path)
        self._task = watch_in_background(client, job.id, self._monitor, preview_interval=2.0)
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._task.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        done = self._task.done  # read first: the events before it are all in the monitor
        node = _train_node(context, self.node_name)
        if node is not None:
            _show(node, self._monitor)
        if not done:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        self._client.close()
        return self._end(node)

    def _end(self, node: PlateforgeTrainNode | None) -> set[str]:
        job, error = self._monitor.job, self._task.error
        if error is not None:
            if node is not None:
                node.status = f"failed: {error}"
            self.report({"ERROR"}, f"plateforge: {error}")
            return {"CANCELLED"}
        line = self._monitor.status()
        if job is not None and job.state == "SUCCEEDED":
            self.report({"INFO"}, f"plateforge: {line}")
            return {"FINISHED"}
        if self._task.cancel_requested and (job is None or not job.finished):
            self.report({"WARNING"}, f"plateforge: stopped following job {job.id if job else ''}; it runs on "
                        "on the server (the Cancel button stops it)")  # fmt: skip
            return {"CANCELLED"}
        self.report({"ERROR"}, f"plateforge: {line}")
        return {"CANCELLED"}


class PLATEFORGE_OT_cancel_training(bpy.types.Operator):
    """Cancel this node's training job on the server (its last checkpoint is kept for resume)"""

    bl_idname = "plateforge.cancel_training"
    bl_label = "Cancel training"
    node_name: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        from plateforge.errors import PlateforgeError
        from plateforge.jobs_client import TrainingClient

        node = _train_node(context, self.node_name)
        if node is None or not node.job_id:
            return {"CANCELLED"}
        try:
            with preferences.connect(context) as client:
                job = TrainingClient(client).cancel(node.job_id)
        except PlateforgeError as error:
            return _fail(self, error)
        node.status = f"job {job.id}: {job.state.lower()}"
        return {"FINISHED"}


classes = (PlateforgeTrainNode, PLATEFORGE_OT_train, PLATEFORGE_OT_cancel_training)

__all__ = ["TRAIN_IDNAME", "classes"]
