"""Baking a node: render what feeds each input to EXR, send the frames that changed, cache results.

Inputs are captured by linking the socket that feeds each node input to the compositing group's
output for a moment and rendering compositing-only to a 32-bit float EXR: whatever feeds the node
(an Image node, a Render Layers pass, a chain of nodes) arrives exactly as the compositor computes
it, with no display transform. An input fed straight by an Image node showing a plain EXR skips the
render: the file it shows is sent as it is (see ``_image_file``). EXR rows are top-down on both
sides of this boundary (Blender's EXR reader and writer flip its bottom-up buffers), so no pixel
row is flipped by hand here.

The server side is :func:`plateforge.batch.run_sequence`: temporal neighbours, two requests in
flight, cancel between frames, atomic writes with provenance.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy

from .node import PlateforgeNode, model_info, set_model, show_result

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class BakePlan:
    """What the main thread captured, ready to send from any thread."""

    node_name: str
    info: Any
    params: dict[str, Any]
    layout: Any  # plateforge.hosts.cache.CacheLayout
    inputs: list[str]
    first: int
    last: int
    #: The frames checked against the cache with the node's stored model description, before any
    #: server is asked (plateforge.hosts.cache.CachePlan): a bake with nothing stale needs none.
    cache: Any = None
    report: Any = None  # plateforge.hosts.process.ProcessReport, once sent
    served: Any = None  # the ModelInfo the server ran, once sent

    @property
    def stale(self) -> tuple[int, ...]:
        """Frames the server must compute (every frame when the cache was not checked)."""
        if self.cache is None:
            return tuple(range(self.first, self.last + 1))
        return tuple(self.cache.stale)


def feeding_socket(socket: bpy.types.NodeSocket) -> bpy.types.NodeSocket | None:
    """The output socket feeding ``socket``, through reroutes; None if nothing does."""
    while socket.is_linked:
        link = socket.links[0]
        if link.is_muted or not link.is_valid:
            return None
        source = link.from_socket
        if source.node.bl_idname != "NodeReroute":
            return source
        socket = source.node.inputs[0]
    return None


_LAST_NUMBER = re.compile(r"(\d+)(?=\D*$)")


def _image_file(source: bpy.types.NodeSocket, scene: bpy.types.Scene) -> Callable[[int], str] | None:
    """For an input fed straight by an Image node showing an EXR, the file it shows on each frame,
    when the compositor would pass that file's pixels through unchanged: scene-linear (or data)
    colour space, premultiplied alpha, a single-layer EXR the size of the render with nothing
    outside its display window. The bake then sends the plate file itself (its own pixel type,
    half stays half) instead of rendering a copy of it. None where any of that is not so."""
    node = source.node
    image = getattr(node, "image", None)
    if node.bl_idname != "CompositorNodeImage" or source.identifier != "Image" or image is None:
        return None
    working = getattr(getattr(bpy.data, "colorspace", None), "working_space", "Linear Rec.709")
    if image.source not in ("FILE", "SEQUENCE") or image.file_format != "OPEN_EXR" or image.packed_file is not None:
        return None
    if image.alpha_mode != "PREMUL" or not (
        image.colorspace_settings.is_data or image.colorspace_settings.name == working
    ):
        return None
    first_path = bpy.path.abspath(image.filepath, library=image.library)
    if not os.path.isfile(first_path):
        return None
    from plateforge.errors import PlateforgeError
    from plateforge.exr import read_exr_header

    try:
        parts = read_exr_header(first_path)
    except PlateforgeError:
        return None  # the render path reports a damaged file as Blender sees it
    render = scene.render
    size = (
        render.resolution_x * render.resolution_percentage // 100,
        render.resolution_y * render.resolution_percentage // 100,
    )
    part = parts[0]
    if (
        len(parts) != 1
        or part.data_window != part.display_window
        or (part.display_window.width, part.display_window.height) != size
    ):
        return None
    if part.display_window.min_x != 0 or part.display_window.min_y != 0:
        return None
    if image.source == "FILE":
        return lambda frame: first_path
    match = _LAST_NUMBER.search(os.path.basename(first_path))
    if match is None or node.use_cyclic:
        return None
    head = first_path[: len(first_path) - len(os.path.basename(first_path)) + match.start()]
    tail = first_path[len(head) + len(match.group(1)) :]
    width = len(match.group(1))

    def path(frame: int) -> str:
        # As Blender's image user: file number = frame - start + 1 + offset, inside the duration.
        number = frame - node.frame_start + 1
        if not 1 <= number <= node.frame_duration:
            from plateforge.errors import UsageError

            raise UsageError(f"frame {frame} is outside the image sequence of node {node.name!r}")
        return f"{head}{number + node.frame_offset:0{width}d}{tail}"

    return path


def _place(source: str, destination: str) -> None:
    """``source`` at ``destination`` (a hard link where possible, else a copy), atomically."""
    from plateforge import atomic

    with atomic.atomic_path(destination) as temp:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)


def _group_output(tree: bpy.types.NodeTree) -> bpy.types.Node:
    outputs = [n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"]
    if not outputs or not outputs[0].inputs or outputs[0].inputs[0].type == "CUSTOM":
        from plateforge.errors import UsageError

        raise UsageError("the compositing node group has no Group Output with an Image socket")
    return next((n for n in outputs if n.is_active_output), outputs[0])


class _RenderSettings:
    """Compositing-only float EXR stills, restored afterwards whatever happens."""

    FIELDS = ("file_format", "color_depth", "color_mode", "exr_codec")

    def __init__(self, scene: bpy.types.Scene) -> None:
        self.scene = scene

    def __enter__(self) -> _RenderSettings:
        render = self.scene.render
        settings = render.image_settings
        self.saved = (
            render.filepath,
            render.use_compositing,
            render.use_sequencer,
            render.use_file_extension,
            self.scene.frame_current,
            {k: getattr(settings, k) for k in self.FIELDS},
        )
        settings.file_format = "OPEN_EXR"
        settings.color_depth = "32"
        settings.color_mode = "RGBA"
        settings.exr_codec = "NONE"  # a scratch file read back at once: compressing it costs more than it saves
        render.use_compositing = True
        render.use_sequencer = False
        render.use_file_extension = False
        return self

    def __exit__(self, *exc: object) -> None:
        render = self.scene.render
        filepath, compositing, sequencer, extension, frame, image = self.saved
        for key, value in image.items():
            setattr(render.image_settings, key, value)
        render.filepath, render.use_compositing, render.use_sequencer = filepath, compositing, sequencer
        render.use_file_extension = extension
        self.scene.frame_set(frame)


def capture_inputs(
    scene: bpy.types.Scene,
    node: PlateforgeNode,
    frames: list[int],
    layout: Any,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, str]:
    """Render each linked input of ``node`` for ``frames`` into the cache's input files."""
    from plateforge.errors import UsageError

    info = model_info(node)
    sockets: dict[str, bpy.types.NodeSocket] = {}
    for spec in info.inputs:
        socket = node.inputs.get(spec.name)
        source = feeding_socket(socket) if socket is not None else None
        if source is not None:
            sockets[spec.name] = source
        elif spec.required:
            raise UsageError(f"node {node.name!r}: input {spec.name!r} of model {info.name!r} is not connected")
    patterns = {name: layout.input_pattern(name) for name in sockets}
    capture(scene, sockets, frames, patterns, progress=progress, cancel=cancel)
    return patterns


def capture(
    scene: bpy.types.Scene,
    sockets: dict[str, bpy.types.NodeSocket],
    frames: list[int],
    patterns: dict[str, str],
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write what each of ``sockets`` (output sockets of the scene's compositor) shows on each of
    ``frames`` to ``patterns[name]`` (numbered EXRs)."""
    from plateforge.errors import CancelledError
    from plateforge.exr import read_exr, write_exr
    from plateforge.sequences import frame_path

    tree = scene.compositing_node_group
    output = _group_output(tree)
    target = output.inputs[0]
    saved_links = [link.from_socket for link in target.links]
    for pattern in patterns.values():
        os.makedirs(os.path.dirname(pattern), exist_ok=True)
    files = {name: found for name, source in sockets.items() if (found := _image_file(source, scene)) is not None}
    total, done = len(frames) * len(sockets), 0
    try:
        with _RenderSettings(scene):
            for frame in frames:
                scene.frame_set(frame)
                for name, source in sockets.items():
                    if cancel is not None and cancel.is_set():
                        raise CancelledError(f"cancelled while capturing inputs ({done} of {total} captured)")
                    if name in files:
                        _place(files[name](frame), frame_path(patterns[name], frame))
                    else:
                        tree.links.new(source, target)
                        scene.render.filepath = frame_path(patterns[name], frame)
                        bpy.ops.render.render(write_still=True, scene=scene.name)
                    done += 1
                    if progress is not None:
                        progress("capture", done, total)
    finally:
        for link in list(target.links):
            tree.links.remove(link)
        for source in saved_links:
            tree.links.new(source, target)
    # A float socket (a matte, a Render Layers Alpha) reaches the output as grey with alpha 1;
    # plateforge reads masks from alpha, so the value goes there too.
    for name in (n for n, s in sockets.items() if s.type == "VALUE" and n not in files):
        for frame in frames:
            path = frame_path(patterns[name], frame)
            image = read_exr(path)
            write_exr(path, image.replace(channels={**image.channels, "A": image.channels["R"]}))


def plan_bake(
    scene: bpy.types.Scene,
    node: PlateforgeNode,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> BakePlan:
    """Render the node's inputs into its cache for its frame range (main thread)."""
    from plateforge.errors import UsageError
    from plateforge.hosts.blender_bake import capture_frames
    from plateforge.hosts.cache import plan_frames
    from plateforge.hosts.knobs import params_from_knobs

    info = model_info(node)
    params = params_from_knobs(info, node.param_values())
    first, last = node.frame_range(scene)
    if last < first:
        raise UsageError(f"node {node.name!r}: frame range {first}-{last} is empty")
    layout = node.cache_layout()
    captured = capture_frames(range(first, last + 1), radius=info.temporal_radius, first=scene.frame_start,
                              last=scene.frame_end)  # fmt: skip
    inputs = capture_inputs(scene, node, captured, layout, progress=progress, cancel=cancel)
    frames = range(first, last + 1)
    cache = plan_frames(layout, info, params=params, frames=frames, inputs=sorted(inputs))
    return BakePlan(node.name, info, params, layout, sorted(inputs), first, last, cache=cache)


def send(
    client: Any, plan: BakePlan, *, progress: Progress | None = None, cancel: threading.Event | None = None
) -> None:
    """Send the frames whose inputs or parameters changed; write the cache (any thread)."""
    from plateforge.hosts.process import process_cached

    def sent(done: int, total: int, frame: int) -> None:
        if progress is not None:
            progress("send", done, total)

    # The node's version is pinned (NAME@VERSION): a model published mid-bake never changes the
    # shot. Its description may still differ (a reinstalled model): the cache is then keyed with
    # what ran, and ``finish`` stores that description so the next bake can be checked offline.
    reference = f"{plan.info.name}@{plan.info.version}"
    plan.served = client.model_info(reference)
    plan.report = process_cached(
        client,
        layout=plan.layout,
        model=reference,
        frames=range(plan.first, plan.last + 1),
        inputs=plan.inputs,
        params=plan.params,
        progress=sent,
        cancel=cancel,
    )


def finish(scene: bpy.types.Scene, plan: BakePlan, *, cancelled: bool = False) -> str:
    """Show the result in the node (main thread) and return the line the operator reports: what
    was sent, or for a cancelled bake how many frames are cached and current."""
    from plateforge.hosts.blender_bake import encode_model_info
    from plateforge.hosts.cache import plan_frames

    node = scene.compositing_node_group.nodes[plan.node_name]
    info = plan.info
    if plan.served is not None and encode_model_info(plan.served) != node.model_info:
        set_model(node, plan.served)
        info = plan.served
    show_result(node, plan.first, plan.last)
    node.progress = 1.0
    total = plan.last - plan.first + 1
    report = plan.report
    if cancelled:
        # Counted again from the cache: every frame written before the cancel is filed there.
        current = plan_frames(
            plan.layout, info, params=plan.params, frames=range(plan.first, plan.last + 1), inputs=plan.inputs
        )
        node.status = f"cancelled: {len(current.fresh)} of {total} frames cached and current"
    elif report is not None:
        node.status = (
            f"sent {len(report.sent)} of {total} frames ({len(report.skipped)} unchanged) to {info.name} {info.version}"
        )
    else:
        node.status = f"sent 0 of {total} frames ({total} unchanged): {info.name} {info.version} is up to date"
    return str(node.status)


class Connection:
    """A server connection made on first use only: a bake whose frames are all current never
    needs a server, so it must not fail for want of one."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bake_node(
    scene: bpy.types.Scene, node: PlateforgeNode, connection: Connection, *, progress: Progress | None = None
) -> str:
    """The whole bake on the calling thread (headless renders, scripts, the farm); it connects to
    the server only when some frame is stale."""
    plan = plan_bake(scene, node, progress=progress)
    if plan.stale:
        send(connection.client, plan, progress=progress)
    return finish(scene, plan)


class Sending:
    """:func:`send` on a thread, for the Bake button: the operator's ``modal`` reads ``progress``
    on timer events and sets ``cancel`` on Esc (Blender data stays on the main thread). The client
    is closed when the thread ends."""

    def __init__(self, client: Any, plan: BakePlan) -> None:
        self.plan = plan
        self.cancel = threading.Event()
        #: (frames written, frames to send), replaced whole by the thread.
        self.progress: tuple[int, int] = (0, len(plan.stale))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(client,), name="plateforge-bake", daemon=True)
        self._thread.start()

    def _work(self, client: Any) -> None:
        def sent(phase: str, done: int, total: int) -> None:
            self.progress = (done, total)

        try:
            send(client, self.plan, progress=sent, cancel=self.cancel)
        except BaseException as error:  # reported by the operator on the main thread
            self.error = error
        finally:
            client.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
