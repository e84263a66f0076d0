"""Farm renders: ``blender -b shot.blend -a`` bakes what its nodes marked 'bake before render' need.

A bake renders the node's inputs, which cannot happen inside a render (render_pre runs inside the
render job), so a headless session bakes right after the .blend loads, before ``-a`` starts. The
bake is idempotent, so frames baked on the workstation are checked, not re-sent.
"""

from __future__ import annotations

import sys
from typing import Any

import bpy

from . import bake, preferences
from .node import nodes_in


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]
def _bake_on_load(*args: Any) -> None:
    if not bpy.app.background:
        return
    from plateforge.errors import PlateforgeError

    for scene in bpy.data.scenes:
        marked = [n for n in nodes_in(scene) if n.bake_before_render]
        if not marked:
            continue
        try:
            with bake.Connection(preferences.connect) as connection:
                for node in marked:
                    line = bake.bake_node(scene, node, connection)
                    print(f"plateforge: {scene.name}/{node.name}: {line}", flush=True)
        except PlateforgeError as error:
            # A farm task must fail loudly rather than render stale or empty frames.
            print(f"plateforge: bake before render failed: {error}", file=sys.stderr, flush=True)
            sys.exit(1)


def register() -> None:
    bpy.app.handlers.load_post.append(_bake_on_load)


def unregister() -> None:
    if _bake_on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_bake_on_load)
