"""Render Cycles shots through real bpy 5.0.1, cached by content hash under ``build/cycles-cache``.

:func:`render_shot` runs ``bench/cycles/generate.py`` with the Python of ``build/blender-venv``
(made as ``tests/blender/conftest.py`` makes it: python3.11, ``pip install bpy==5.0.1``, a marker
file) and returns the folder of the shot's EXRs. The folder's name carries a hash of everything
the pixels depend on: the generator's and the texture converter's source, the shot's entry, the
bpy version and the photographs' bytes. A finished shot is renamed into place only once every
frame is written, so a cached folder is always complete; an interrupted render leaves a
``.partial-*`` folder that the next call resumes frame by frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .spec import ShotSpec, load_set
from .textures import PHOTOGRAPHS, convert, source_path

__all__ = [
    "BPY",
    "CACHE",
    "VARIANTS",
    "VENV",
    "blender_python",
    "cache_key",
    "render_set",
    "render_shot",
    "variant_frames",
]

REPO = Path(__file__).resolve().parents[2]
BPY = "bpy==5.0.1"
VENV = REPO / "build" / "blender-venv"
#: Where rendered shots are kept: ``$PLATEFORGE_CYCLES_CACHE``, else ``build/cycles-cache`` (gitignored).
#: Keys are content hashes, so one cache can serve several checkouts of the same generator.
CACHE = Path(os.environ.get("PLATEFORGE_CYCLES_CACHE") or REPO / "build" / "cycles-cache")
GENERATOR = Path(__file__).resolve().with_name("generate.py")
#: The renders (see generate.py's module doc): each frame, except ``still`` (the middle frame only).
VARIANTS = ("rigged", "plate", "relit", "clean", "subject", "rig", "backdrop", "still")


def variant_frames(entry: ShotSpec, variant: str) -> list[int]:
    """The frame numbers ``variant`` is rendered for in shot ``entry``."""
    first, count = int(entry["first_frame"]), int(entry["frames"])
    if variant == "still":
        return [(2 * first + count - 1) // 2]
    return list(range(first, first + count))


def blender_python(venv: Path = VENV) -> Path:
    """The Python of the bpy virtualenv, made on first use exactly as the Blender tests make it."""
    python = venv / "bin" / "python"
    marker = venv / "plateforge-bpy.txt"
    if python.exists() and marker.exists() and marker.read_text() == BPY:
        return python
    found = shutil.which("python3.11")
    if found is None:
        raise RuntimeError("rendering the Cycles shots needs python3.11 (Blender's Python) on PATH, found none")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([found, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", BPY], capture_output=True, text=True, timeout=1800
    )
    if install.returncode != 0:
        raise RuntimeError(f"pip install {BPY} failed:\n{install.stdout}{install.stderr}")
    marker.write_text(BPY)
    return python


def _photographs(entry: ShotSpec) -> list[str]:
    names = [*entry["set_a"], *entry["set_b"]]
    unknown = sorted(set(names) - set(PHOTOGRAPHS))
    if unknown:
        raise ValueError(
            f"shot {entry['name']!r}: unknown photographs {unknown}, expected some of {sorted(PHOTOGRAPHS)}"
        )
    return names


def cache_key(entry: ShotSpec) -> str:
    """sha256 over what the render depends on: generator and converter source, the entry, bpy, the photographs."""
    digest = hashlib.sha256()
    digest.update(GENERATOR.read_bytes())
    digest.update(Path(__file__).with_name("textures.py").read_bytes())
    digest.update(json.dumps(entry, sort_keys=True).encode())
    digest.update(BPY.encode())
    digest.update(",".join(VARIANTS).encode())
    for name in sorted(set(_photographs(entry))):
        digest.update(hashlib.sha256(source_path(name).read_bytes()).digest())
    return digest.hexdigest()


def render_shot(entry: ShotSpec, *, cache: Path = CACHE, threads: int = 2, quiet: bool = True) -> Path:
    """The folder of ``entry``'s rendered EXRs, rendered now (under ``nice``) unless cached.

    The folder holds ``<variant>.<frame>.exr`` for each of :data:`VARIANTS` (multilayer float
    EXRs as Blender writes them), ``cameras.json``, ``shot.json`` (the entry as rendered) and
    ``manifest.json`` (the key, the bpy version, the render's wall time).
    """
    key = cache_key(entry)
    final = cache / f"{entry['name']}-{key[:16]}"
    if (final / "manifest.json").is_file():
        return final
    partial = cache / f".partial-{entry['name']}-{key[:16]}"
    partial.mkdir(parents=True, exist_ok=True)
    textures = cache / "textures"
    resolved = dict(entry)
    resolved["textures"] = {part: [str(convert(name, textures)) for name in entry[part]] for part in ("set_a", "set_b")}
    resolved["variants"] = list(VARIANTS)
    resolved["threads"] = threads
    spec_path = partial / "shot.json"
    spec_path.write_text(json.dumps(resolved, indent=1))
    command = ["nice", "-n", "10", str(blender_python()), str(GENERATOR), str(spec_path), str(partial)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=quiet, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.monotonic() - started
    if result.returncode != 0:
        tail = (result.stdout or "")[-2000:] + (result.stderr or "")[-3000:]
        raise RuntimeError(f"rendering Cycles shot {entry['name']!r} failed (exit {result.returncode}):\n{tail}")
    missing = [
        f"{v}.{f:04d}.exr"
        for v in VARIANTS
        for f in variant_frames(entry, v)
        if not (partial / f"{v}.{f:04d}.exr").is_file()
    ]
    if missing:
        raise RuntimeError(f"Cycles shot {entry['name']!r}: the generator exited 0 but did not write {missing[:5]}")
    generator = json.loads((partial / "generator.json").read_text())
    manifest = {"key": key, "bpy": BPY, "blender": generator["blender"], "render_seconds": round(seconds, 1),
                "threads": threads}  # fmt: skip
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if final.exists():  # a concurrent render finished first: keep that one
        shutil.rmtree(partial)
        return final
    os.replace(partial, final)
    return final


def render_set(name: str, *, cache: Path = CACHE, threads: int = 2) -> list[Path]:
    """Render (or find cached) every shot of set ``name`` ("tune" or "report"); their folders, in spec order."""
    return [render_shot(entry, cache=cache, threads=threads) for entry in load_set(name)]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Render the Cycles shot sets (cached under build/cycles-cache).")
    parser.add_argument("set", choices=("tune", "report"))
    parser.add_argument("--shot", action="append", default=[], help="only these shots (by name)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for entry in load_set(args.set):
        if args.shot and entry["name"] not in args.shot:
            continue
        started = time.monotonic()
        folder = render_shot(entry, threads=args.threads, quiet=False)
        print(f"{entry['name']}: {folder} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0
