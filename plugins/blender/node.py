"""The plateforge compositor node: a node group whose sockets and panel follow a model.

It is a ``CompositorNodeCustomGroup``, not a Python-evaluated node: Blender's compositor runs its
inner tree natively, and that tree is only an Image node reading the bake cache (an EXR sequence)
into the Group Output. The node's inputs are group inputs that nothing inside reads: the bake
operator renders what is linked to them and sends it to the server. So rendering never calls
Python and never waits on a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

NODE_IDNAME = "PlateforgeCompositorNode"
RESULT_NODE = "plateforge result"
OUTPUT_SOCKET = "Image"

#: Enum item lists handed to Blender must outlive the callback (Blender keeps raw pointers).
_choice_items_alive: dict[int, list[tuple[str, str, str]]] = {}


def _choice_items(self: Any, context: Any) -> list[tuple[str, str, str]]:
    items = [(c, c, "") for c in self.choices.split("\n") if c] or [("", "(none)", "")]
    _choice_items_alive[self.as_pointer()] = items
    return items


class PlateforgeParam(bpy.types.PropertyGroup):
    """One model parameter as a widget; only the field matching ``kind`` is used."""

    knob: bpy.props.StringProperty()  # type: ignore[valid-type]
    param: bpy.props.StringProperty()  # type: ignore[valid-type]
    kind: bpy.props.StringProperty()  # type: ignore[valid-type]
    label: bpy.props.StringProperty()  # type: ignore[valid-type]
    tooltip: bpy.props.StringProperty()  # type: ignore[valid-type]
    choices: bpy.props.StringProperty()  # type: ignore[valid-type]
    float_value: bpy.props.FloatProperty(name="Value")  # type: ignore[valid-type]
    int_value: bpy.props.IntProperty(name="Value")  # type: ignore[valid-type]
    bool_value: bpy.props.BoolProperty(name="Value")  # type: ignore[valid-type]
    string_value: bpy.props.StringProperty(name="Value")  # type: ignore[valid-type]
    choice_value: bpy.props.EnumProperty(name="Value", items=_choice_items)  # type: ignore[valid-type]

    @property
    def field(self) -> str:
        return {"float": "float_value", "int": "int_value", "bool": "bool_value", "choice": "choice_value"}.get(
            self.kind, "string_value"
        )

    @property
    def value(self) -> Any:
        return getattr(self, self.field)


def _new_inner_tree(name: str) -> bpy.types.NodeTree:
    tree = bpy.data.node_groups.new(f".plateforge {name}", "CompositorNodeTree")
    tree.interface.new_socket(OUTPUT_SOCKET, in_out="OUTPUT", socket_type="NodeSocketColor")
    tree.nodes.new("NodeGroupInput").location = (-300, 0)
    output = tree.nodes.new("NodeGroupOutput")
    output.location = (300, 0)
    image = tree.nodes.new("CompositorNodeImage")
    image.name = image.label = RESULT_NODE
    tree.links.new(image.outputs["Image"], output.inputs[OUTPUT_SOCKET])
    return tree


class PlateforgeNode(bpy.types.CompositorNodeCustomGroup):
    """Runs a plateforge model: bake sends its inputs to the server, render reads the cache."""

    bl_idname = NODE_IDNAME
    bl_label = "plateforge"
    bl_width_default = 260

    model: bpy.props.StringProperty(name="Model", description="The model this node runs")  # type: ignore[valid-type]
    #: What the model declared (plateforge.v1.ModelInfo as JSON), kept in the .blend for the farm.
    model_info: bpy.props.StringProperty()  # type: ignore[valid-type]
    params: bpy.props.CollectionProperty(type=PlateforgeParam)  # type: ignore[valid-type]
    cache_dir: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Cache",
        description="Folder of the bake cache (one sub-folder per node)",
        default="//plateforge_cache/",
        subtype="DIR_PATH",
        options={"PATH_SUPPORTS_BLEND_RELATIVE"},  # "//" is the .blend's folder, as Blender's own paths
    )
    use_scene_range: bpy.props.BoolProperty(name="Scene range", default=True)  # type: ignore[valid-type]
    frame_start: bpy.props.IntProperty(name="Start", default=1)  # type: ignore[valid-type]
    frame_end: bpy.props.IntProperty(name="End", default=250)  # type: ignore[valid-type]
    bake_before_render: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Bake before render",
        description="Headless renders (blender -b file.blend -a) bake missing or stale frames before rendering",
        default=False,
    )
    status: bpy.props.StringProperty()  # type: ignore[valid-type]
    progress: bpy.props.FloatProperty(min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, ntree: bpy.types.NodeTree) -> bool:
        return bool(ntree.bl_idname == "CompositorNodeTree")

    def init(self, context: bpy.types.Context) -> None:
        self.node_tree = _new_inner_tree(self.name)

    def copy(self, node: bpy.types.Node) -> None:
        self.node_tree = node.node_tree.copy()

    def free(self) -> None:
        tree = self.node_tree
        if tree is not None and tree.users <= 1:
            bpy.data.node_groups.remove(tree)

    def draw_buttons(self, context: bpy.types.Context, layout: bpy.types.UILayout) -> None:
        row = layout.row(align=True)
        row.context_pointer_set("node", self)
        row.menu("PLATEFORGE_MT_models", text=self.model or "Choose a model", icon="NODE_COMPOSITING")
        op = row.operator("plateforge.refresh_models", text="", icon="FILE_REFRESH")
        op.node_name = self.name
        for item in self.params:
            layout.prop(item, item.field, text=item.label)
        layout.prop(self, "cache_dir")
        row = layout.row(align=True)
        row.prop(self, "use_scene_range")
        if not self.use_scene_range:
            row.prop(self, "frame_start")
            row.prop(self, "frame_end")
        layout.prop(self, "bake_before_render")
        op = layout.operator("plateforge.bake", icon="RENDER_ANIMATION")
        op.node_name = self.name
        if 0.0 < self.progress < 1.0:
            layout.progress(factor=self.progress, text=self.status)
        elif self.status:
            layout.label(text=self.status)

    def draw_buttons_ext(self, context: bpy.types.Context, layout: bpy.types.UILayout) -> None:
        self.draw_buttons(context, layout)

    def draw_label(self) -> str:
        return f"plateforge: {self.model}" if self.model else "plateforge"

    # -- what the bake needs -------------------------------------------------------------------

    def frame_range(self, scene: bpy.types.Scene) -> tuple[int, int]:
        if self.use_scene_range:
            return scene.frame_start, scene.frame_end
        return self.frame_start, self.frame_end

    def cache_layout(self) -> Any:
        """This node's :class:`plateforge.hosts.cache.CacheLayout`."""
        from plateforge.hosts.blender_bake import resolve_folder
        from plateforge.hosts.cache import CacheLayout

        what = f"the bake cache of node {self.name!r}"
        return CacheLayout.for_node(resolve_folder(self.cache_dir, blend_file=bpy.data.filepath, what=what), self.name)

    def param_values(self) -> dict[str, Any]:
        """Widget values keyed by knob name, for :func:`plateforge.hosts.knobs.params_from_knobs`."""
        return {item.knob: item.value for item in self.params}


def raise_usage(message: str) -> None:
    from plateforge.errors import UsageError

    raise UsageError(message)


def set_model(node: PlateforgeNode, info: Any) -> None:
    """Point ``node`` at the model ``info`` (a plateforge ModelInfo): one input socket per declared
    input, one widget per parameter. Inputs and parameters the old model shared by name keep their
    links and values, so switching between versions of a model keeps the graph wired."""
    from plateforge.hosts.blender_bake import encode_model_info
    from plateforge.hosts.knobs import knob_specs

    interface = node.node_tree.interface
    wanted = [spec.name for spec in info.inputs]
    for item in [i for i in interface.items_tree if getattr(i, "in_out", "") == "INPUT"]:
        if item.name not in wanted:
            interface.remove(item)
    present = {i.name: i for i in interface.items_tree if getattr(i, "in_out", "") == "INPUT"}
    for spec in info.inputs:
        if spec.name not in present:
            present[spec.name] = interface.new_socket(
                spec.name, description=spec.description, in_out="INPUT", socket_type="NodeSocketColor"
            )
    # Declared order, after the output socket (interface position 0).
    for position, name in enumerate(wanted, start=1):
        interface.move(present[name], position)

    old = {item.knob: (item.kind, item.value) for item in node.params}
    node.params.clear()
    for knob in knob_specs(info):
        item = node.params.add()
        item.knob, item.param, item.kind = knob.name, knob.param, knob.kind
        item.label, item.tooltip, item.choices = knob.label, knob.tooltip, "\n".join(knob.choices)
        kind, value = old.get(knob.name, (None, knob.default))
        if kind not in (None, knob.kind):
            value = knob.default
        setattr(item, item.field, value)
    node.model = f"{info.name}@{info.version}"  # the version shown is the version baked
    node.model_info = encode_model_info(info)
    node.status = f"{info.name} {info.version}: {', '.join(wanted) or 'no inputs'}"


def model_info(node: PlateforgeNode) -> Any:
    from plateforge.hosts.blender_bake import decode_model_info

    if not node.model_info:
        raise_usage(f"node {node.name!r} has no model yet: choose one in its panel")
    return decode_model_info(node.model_info)


def show_result(node: PlateforgeNode, first: int, last: int) -> None:
    """Point the inner Image node at the cache's first output so frame N shows its frame N."""
    from plateforge.sequences import frame_path

    info = model_info(node)
    output = info.outputs[0].name if info.outputs else "image"
    path = Path(frame_path(node.cache_layout().output_pattern(output), first))
    if not path.exists():
        return
    image_node = node.node_tree.nodes[RESULT_NODE]
    image = image_node.image
    if image is None or Path(bpy.path.abspath(image.filepath)) != path:
        image = bpy.data.images.load(str(path), check_existing=True)
        image.name = f".plateforge {node.name}"
        image_node.image = image
    if node.cache_dir.startswith("//") and bpy.data.filepath:
        # Relative like the setting, so the saved file finds its cache wherever the shot folder is mounted.
        image.filepath = bpy.path.relpath(str(path))
    image.source = "SEQUENCE"
    image.reload()
    # Blender plays a sequence from its first file: frame F shows file F - start + 1 + offset.
    image_node.frame_start = first
    image_node.frame_offset = first - 1
    image_node.frame_duration = last - first + 1
    image_node.use_cyclic = False
    image_node.use_auto_refresh = True


def is_plateforge_node(node: bpy.types.Node) -> bool:
    return getattr(node, "bl_idname", "") == NODE_IDNAME


def nodes_in(scene: bpy.types.Scene) -> list[PlateforgeNode]:
    tree = scene.compositing_node_group
    return [n for n in tree.nodes if is_plateforge_node(n)] if tree is not None else []


classes = (PlateforgeParam, PlateforgeNode)

__all__ = [
    "NODE_IDNAME",
    "PlateforgeNode",
    "PlateforgeParam",
    "classes",
    "is_plateforge_node",
    "model_info",
    "nodes_in",
    "set_model",
    "show_result",
]
