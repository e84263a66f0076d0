"""Ground truth that looks like production: shots rendered with Blender/Cycles (bpy 5.0.1, CPU).

    from bench.cycles import load_set, load_cycles_shot, render_set   # from the repository root
    shot = load_cycles_shot(load_set("report")[0])   # renders (cached under build/cycles-cache)
    shot.cleanup(), shot.matte(), shot.relit()       # the objects the evaluations score

Scripts in ``bench/`` (run as ``python bench/x.py``) import it as ``cycles``. Render a whole set
with ``python -m bench.cycles tune|report``. See docs/benchmarks.md.
"""

from .render import CACHE, blender_python, cache_key, render_set, render_shot
from .shots import CyclesShot, RenderedShot, load_cycles_shot, read_render, roto_mask
from .spec import SETS, ShotSpec, draft, find_shot, load_set

__all__ = [
    "CACHE",
    "SETS",
    "CyclesShot",
    "RenderedShot",
    "ShotSpec",
    "blender_python",
    "cache_key",
    "draft",
    "find_shot",
    "load_cycles_shot",
    "load_set",
    "read_render",
    "render_set",
    "render_shot",
    "roto_mask",
]
