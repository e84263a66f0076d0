"""Blender node benchmark: what does the plateforge node cost per frame, next to a direct call?

For FRAMES random float RGBA frames at WIDTH x HEIGHT (default 1920x1080) in an Image node
sequence feeding a plateforge node (model ``passthrough``, so no model work is timed), inside
real Blender (bpy 5.0.1 in build/blender-venv, with the extension zip built and installed the way
an artist installs it), each round measures:

* ``bake``   -- the Bake operator over the range, per frame: render what feeds the node to a
  float EXR (compositing only), hash it, send it (two frames in flight), write the result EXR and
  the cache index;
* ``render`` -- a compositing-only render of one frame through the node to a float EXR (reads the
  cache: no server, no Python);
* ``rebake_unchanged`` -- a second bake with nothing changed, per frame: capture and hash only,
  nothing sent;
* ``direct`` -- in the same Blender process and round, ``Client.process("passthrough")`` on the
  very frame the node sent: the transport cost alone.

* ``render_without_node`` -- the same render with the plate linked straight to the output.

``node_overhead_vs_transport`` = (bake + render - render_without_node - direct) / direct, with
medians: what the node adds to a render beyond moving the frame, in units of moving the frame;
the project target is at most 1.0. ``raw_vs_transport`` = (bake + render - direct) / direct
counts the render itself too. Prints JSON. The server is a separate process on 127.0.0.1.

The plate is an Image node showing EXR files, so the bake sends the files themselves (no capture
render); other inputs (Render Layers, node chains) add one compositing render per input and frame,
about ``render_without_node`` each.

  python bench/blender.py [--frames 4] [--rounds 3] [--width 1920] [--height 1080] [--before-after PNG]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from plateforge.cli.blender import build_extension
from plateforge.localserver import start_ready, stop

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / "build" / "blender-venv" / "bin" / "python"
TOKEN = "bench-blender"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument(
        "--before-after", type=Path, metavar="PNG",
        help="also render the synthetic shot through the node with cleanup-classical and write "
        "plate | node render | ground truth to PNG (the README's image)",
    )  # fmt: skip
    args = parser.parse_args()
    if not VENV_PYTHON.exists():
        print(
            f"no {VENV_PYTHON}: run the Blender tests once, or: python3.11 -m venv build/blender-venv && "
            "build/blender-venv/bin/pip install bpy==5.0.1",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="plateforge-bench-blender-") as temp:
        root = Path(temp)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(root),
            "BLENDER_USER_RESOURCES": str(root / "resources"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "TMPDIR": str(root / "tmp"),
        }
        for key in ("BLENDER_USER_RESOURCES", "XDG_CACHE_HOME", "TMPDIR"):
            Path(env[key]).mkdir(parents=True)
        (root / "work" / "src").mkdir(parents=True)
        zip_path = build_extension(output=root, platforms=["linux-x64"], wheel_dir=REPO / "build" / "blender-wheels")
        install = (
            "import bpy, sys; r = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], "
            "repo='user_default', enable_on_install=True); assert r == {'FINISHED'}, r"
        )
        subprocess.run([str(VENV_PYTHON), "-c", install, str(zip_path)], env=env, check=True, capture_output=True)
        server_env = {**os.environ, "PLATEFORGE_MODELS_DIR": str(root / "no-models")}
        command = [sys.executable, "-m", "plateforge_server", "--port", "0", "--device", "cpu", f"--token={TOKEN}"]
        process, address = start_ready(command, env=server_env)
        try:
            sizes = [str(args.frames), str(args.rounds), str(args.width), str(args.height)]
            inner = [str(VENV_PYTHON), str(REPO / "bench" / "blender" / "inner.py"), address, TOKEN, str(root / "work")]
            inner += sizes
            result = subprocess.run(inner, env=env, capture_output=True, text=True)
            if args.before_after is not None and result.returncode == 0:
                script = str(REPO / "bench" / "blender" / "before_after.py")
                (root / "demo").mkdir()
                demo = [str(VENV_PYTHON), script, address, TOKEN, str(root / "demo"), str(args.before_after.resolve())]
                subprocess.run(demo, env=env, check=True, capture_output=True)
        finally:
            stop(process)
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
            return 1
        line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
        rows: list[dict[str, float]] = json.loads(line[len("RESULT ") :])

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    bake, render, direct = median("bake"), median("render"), median("direct")
    plain = median("render_without_node")
    report = {
        "benchmark": "blender-node",
        "resolution": f"{args.width}x{args.height}",
        "pixel_type": "float RGBA",
        "frames": args.frames,
        "rounds": args.rounds,
        "model": "passthrough",
        "median_s_per_frame": {
            "bake": round(bake, 4),
            "render": round(render, 4),
            "node_total": round(bake + render, 4),
            "render_without_node": round(plain, 4),
            "rebake_unchanged": round(median("rebake_unchanged"), 4),
            "direct_client_call": round(direct, 4),
        },
        "node_overhead_vs_transport": round((bake + render - plain - direct) / direct, 3),
        "raw_vs_transport": round((bake + render - direct) / direct, 3),
        "target_overhead_vs_transport": 1.0,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
