""".blend files that open and render in any Blender, with or without this add-on.

A node of a type Blender does not know (the add-on is not installed there: another artist, a
farm node) crashes Blender when it renders. So the file never holds one: just before a save, each
plateforge node becomes the ordinary group node it already is underneath (same inner tree, name,
links and values; its settings kept as JSON in a custom property), and right after the save it
becomes a live plateforge node again. Without the add-on that group plays the node's baked cache
natively; with it, loading the file (or enabling the add-on) makes the nodes live again.
Disabling the add-on does the same as a save, so a session never holds a node nobody defines.
"""

from __future__ import annotations

import json
from typing import Any

import bpy

from .node import NODE_IDNAME
from .train import TRAIN_IDNAME

#: The custom property a dormant node's settings live in: {"type": bl_idname, "settings": {...}}.
KEY = "plateforge_node"
#: The node types made dormant; their properties beyond a custom group's are what is kept.
LIVE_TYPES = (NODE_IDNAME, TRAIN_IDNAME)
GROUP_TYPE = "CompositorNodeGroup"


def _own_properties(struct: Any) -> list[Any]:
    """The RNA properties ``struct``'s Python class declares (its annotations). Not found by
    subtracting a base's ``bl_rna``: reading ``bpy.types.CompositorNodeCustomGroup.bl_rna`` makes
    the add-on's node classes fail to register again after a disable."""
    declared: dict[str, None] = {}
    for cls in reversed(type(struct).__mro__):
        declared.update(dict.fromkeys(vars(cls).get("__annotations__", {})))
    properties = struct.bl_rna.properties
    return [properties[name] for name in declared if name in properties and properties[name].type != "POINTER"]


def settings_of(struct: Any) -> dict[str, Any]:
    """The values of the properties ``struct``'s class declares (collections of property groups
    included), as JSON-ready data."""
    out: dict[str, Any] = {}
    for prop in _own_properties(struct):
        value = getattr(struct, prop.identifier)
        if prop.type == "COLLECTION":
            out[prop.identifier] = [settings_of(item) for item in value]
        elif getattr(prop, "is_array", False):
            out[prop.identifier] = list(value)
        else:
            out[prop.identifier] = value
    return out


def apply_settings(struct: Any, settings: dict[str, Any]) -> None:
    """Set what :func:`settings_of` returned back on ``struct``, in declaration order (an enum
    whose items come from an earlier field is set after it)."""
    for prop in _own_properties(struct):
        if prop.identifier not in settings or (prop.is_readonly and prop.type != "COLLECTION"):
            continue
        value = settings[prop.identifier]
        if prop.type == "COLLECTION":
            collection = getattr(struct, prop.identifier)
            collection.clear()
            for item in value:
                apply_settings(collection.add(), item)
        elif prop.type == "ENUM" and value not in {i.identifier for i in prop.enum_items}:
            # Dynamic items (a model's choices) are not in the static list: set and let it refuse.
            try:
                setattr(struct, prop.identifier, value)
            except TypeError:
                continue  # the choice no longer exists: the default stands
        elif getattr(struct, prop.identifier) != value:
            setattr(struct, prop.identifier, value)


def _replace(tree: bpy.types.NodeTree, old: bpy.types.Node, node_type: str) -> bpy.types.Node:
    """A node of ``node_type`` in place of ``old``, sharing its inner tree, with its name, place,
    links and socket values; ``old`` is removed."""
    inner = old.node_tree
    links_in = [[(link.from_socket, link.is_muted) for link in socket.links] for socket in old.inputs]
    links_out = [[(link.to_socket, link.is_muted) for link in socket.links] for socket in old.outputs]
    values = [getattr(socket, "default_value", None) for socket in old.inputs]
    looks = {key: getattr(old, key) for key in ("label", "width", "hide", "mute", "select", "use_custom_color")}
    name, location, color, parent = old.name, tuple(old.location), tuple(old.color), old.parent
    was_active = tree.nodes.active == old
    new = tree.nodes.new(node_type)
    made = new.node_tree  # a live node's init() made a fresh inner tree: the old one replaces it
    new.node_tree = inner  # before old goes, so its free() sees the tree still used
    if made is not None and made != inner:
        bpy.data.node_groups.remove(made)  # brand new, nothing else can use it
    tree.nodes.remove(old)
    new.name = name
    new.location, new.color, new.parent = location, color, parent
    for key, value in looks.items():
        setattr(new, key, value)
    for socket, value in zip(new.inputs, values, strict=False):
        if value is not None and hasattr(socket, "default_value"):
            socket.default_value = value
    for socket, sources in zip(new.inputs, links_in, strict=False):
        for source, muted in sources:
            tree.links.new(source, socket).is_muted = muted
    for socket, targets in zip(new.outputs, links_out, strict=False):
        for target, muted in targets:
            tree.links.new(socket, target).is_muted = muted
    if was_active:
        tree.nodes.active = new
    return new


def _compositor_trees() -> list[bpy.types.NodeTree]:
    return [t for t in bpy.data.node_groups if t.bl_idname == "CompositorNodeTree" and t.library is None]


def to_groups() -> int:
    """Every live plateforge node as an ordinary group node; how many were changed."""
    changed = 0
    for tree in _compositor_trees():
        for node in [n for n in tree.nodes if n.bl_idname in LIVE_TYPES]:
            record = {"type": node.bl_idname, "settings": settings_of(node)}
            group = _replace(tree, node, GROUP_TYPE)
            group[KEY] = json.dumps(record, sort_keys=True)
            changed += 1
    return changed


def to_live() -> int:
    """Every group node a plateforge node was saved as, live again; how many were changed."""
    changed = 0
    for tree in _compositor_trees():
        for group in [n for n in tree.nodes if n.bl_idname == GROUP_TYPE and KEY in n]:
            try:
                record = json.loads(str(group[KEY]))
            except ValueError as error:
                # Left as it is, the group still plays its cache; the rest of the file wakes up.
                print(f"plateforge: node {group.name!r} keeps playing its cache: its settings are damaged ({error})")
                continue
            if not isinstance(record, dict) or record.get("type") not in LIVE_TYPES:
                continue
            node = _replace(tree, group, record["type"])
            apply_settings(node, record.get("settings", {}))
            changed += 1
    return changed


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]
def _before_save(*args: Any) -> None:
    to_groups()


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]
def _after_save_or_load(*args: Any) -> None:
    to_live()


_HANDLERS = (
    (bpy.app.handlers.save_pre, _before_save),
    (bpy.app.handlers.save_post, _after_save_or_load),
    (bpy.app.handlers.save_post_fail, _after_save_or_load),  # a failed save must not leave them dormant
    (bpy.app.handlers.load_post, _after_save_or_load),
)


def register() -> None:
    """Install the handlers (load_post first, so a farm bake on load sees live nodes) and wake
    the nodes of a file opened before the add-on was enabled."""
    for handlers, handler in _HANDLERS:
        handlers.append(handler)
    if isinstance(bpy.data, bpy.types.BlendData):  # at start-up, before a file, data is off limits
        to_live()


def unregister() -> None:
    if isinstance(bpy.data, bpy.types.BlendData):
        to_groups()
    for handlers, handler in _HANDLERS:
        if handler in handlers:
            handlers.remove(handler)
