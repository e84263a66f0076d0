"""Build the Blender extension zip, with the wheels it needs for each platform.

  plateforge blender build [--output DIR] [--platform linux-x64 --platform windows-x64 ...]
                           [--source plugins/blender] [--wheel-dir DIR] [--validate BLENDER_EXT_PY]

The zip holds plugins/blender (the add-on and its blender_manifest.toml) plus, under wheels/, the
plateforge host wheel and grpcio, grpcio-health-checking, protobuf, OpenEXR (and typing-extensions) for Blender's
Python (3.11, Blender 4.2 to 5.x) on each --platform: linux-x64, linux-arm64, macos-arm64,
macos-x64, windows-x64 (default: this machine's). numpy is Blender's own. The wheels come from
pip (`pip download`, your index and cache), pinned to the versions installed here. Install the zip
with Edit > Preferences > Get Extensions > Install from Disk, or `blender --command extension
install-file -r user_default ZIP`. --validate runs Blender's own checker (blender_ext.py, shipped
in Blender and in the bpy package under addons_core/bl_pkg/cli/) on the result.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from plateforge import atomic
from plateforge.errors import UsageError

__all__ = ["BLENDER_PYTHON", "PLATFORMS", "build_extension", "main"]

#: The Python of Blender 4.2 to 5.x, which the bundled binary wheels must match.
BLENDER_PYTHON = "3.11"

#: Blender's platform names -> the pip platform tags whose wheels run there (newest first).
PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "linux-arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "macos-arm64": ("macosx_11_0_arm64", "macosx_10_9_universal2", "macosx_10_15_universal2"),
    "macos-x64": ("macosx_10_15_x86_64", "macosx_10_9_x86_64", "macosx_10_9_universal2"),
    "windows-x64": ("win_amd64",),
}

#: Host dependencies the add-on imports and theirs (grpcio needs typing-extensions), besides numpy,
#: which Blender ships.
BUNDLED = ("grpcio", "grpcio-health-checking", "protobuf", "OpenEXR", "typing-extensions")

REPO = Path(__file__).resolve().parents[3]
#: Fixed timestamp: the same sources and wheels give the same zip.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def this_platform() -> str:
    system, machine = sys.platform, platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    name = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(system, system)
    found = f"{name}-{arch}"
    if found not in PLATFORMS:
        raise UsageError(f"no Blender platform for {system}/{machine}; pass --platform, one of {sorted(PLATFORMS)}")
    return found


def _pins() -> list[str]:
    pins = []
    for name in BUNDLED:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise UsageError(f"{name} is not installed here; install plateforge's host dependencies first") from None
    return pins


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise UsageError(f"{what} failed (exit {result.returncode}):\n{tail}")


def download_wheels(platform_name: str, folder: Path) -> list[Path]:
    """The binary wheels of :data:`BUNDLED` for ``platform_name`` and Blender's Python."""
    if platform_name not in PLATFORMS:
        raise UsageError(f"unknown platform {platform_name!r}; known: {sorted(PLATFORMS)}")
    target = folder / platform_name
    target.mkdir(parents=True, exist_ok=True)
    tags = [arg for tag in PLATFORMS[platform_name] for arg in ("--platform", tag)]
    abi = "cp" + BLENDER_PYTHON.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *tags,
               "--python-version", BLENDER_PYTHON, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
               "--abi", "none", "--dest", str(target), *_pins()]  # fmt: skip
    _run(command, f"downloading wheels for {platform_name}")
    return sorted(target.glob("*.whl"))


def plateforge_wheel(folder: Path, *, repo: Path = REPO) -> Path:
    """A wheel of this plateforge checkout (pure Python; the add-on imports only its host side),
    built as ``plateforge nuke install`` builds it."""
    from plateforge.cli.nuke import build_wheel

    target = folder / "plateforge"
    for old in target.glob("plateforge-*.whl"):
        old.unlink()
    return build_wheel(target, checkout=repo)


def _manifest_with(text: str, *, platforms: Sequence[str], wheels: Sequence[str]) -> str:
    """The source manifest with ``platforms`` and ``wheels`` added as top-level keys (before the
    first table, where TOML needs them)."""
    lines = text.splitlines()
    for key in ("platforms", "wheels"):
        if any(line.split("=")[0].strip() == key for line in lines):
            raise UsageError(f"the source blender_manifest.toml sets {key!r}; the build writes it, remove it")
    cut = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    added = [
        "# Written by `plateforge blender build`.",
        "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]",
        "wheels = [",
        *[f'  "./wheels/{w}",' for w in wheels],
        "]",
        "",
    ]
    return "\n".join([*lines[:cut], *added, *lines[cut:]]) + "\n"


def build_extension(
    *,
    output: Path,
    platforms: Sequence[str],
    source: Path = REPO / "plugins" / "blender",
    wheel_dir: Path | None = None,
) -> Path:
    """Write the extension zip into ``output``; return its path."""
    manifest = source / "blender_manifest.toml"
    if not manifest.exists():
        raise UsageError(f"no blender_manifest.toml in {source}")
    if not platforms:
        raise UsageError("no platforms given")
    with tempfile.TemporaryDirectory(prefix="plateforge-wheels-") as temp:
        folder = wheel_dir or Path(temp)
        # By file name: pure-Python wheels are the same file for every platform.
        found = [plateforge_wheel(folder)] + [w for name in platforms for w in download_wheels(name, folder)]
        wheels = {w.name: w for w in found}
        manifest_text = manifest.read_text(encoding="utf-8")
        version = next(
            (line.split("=", 1)[1].strip().strip('"') for line in manifest_text.splitlines()
             if line.split("=")[0].strip() == "version"),
            "0",
        )  # fmt: skip
        output.mkdir(parents=True, exist_ok=True)
        path = output / f"plateforge-{version}.zip"
        with atomic.atomic_path(path) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            text = _manifest_with(manifest_text, platforms=platforms, wheels=sorted(wheels))
            archive.writestr(zipfile.ZipInfo("blender_manifest.toml", _ZIP_TIME), text)
            for file in sorted(source.rglob("*")):
                relative = file.relative_to(source).as_posix()
                if file.is_dir() or "__pycache__" in relative or relative == "blender_manifest.toml":
                    continue
                archive.writestr(zipfile.ZipInfo(relative, _ZIP_TIME), file.read_bytes(), zipfile.ZIP_DEFLATED)
            for name, wheel in sorted(wheels.items()):
                archive.writestr(zipfile.ZipInfo(f"wheels/{name}", _ZIP_TIME), wheel.read_bytes())
    return path


def validate(zip_path: Path, blender_ext: Path) -> None:
    """Blender's own manifest and zip checks (needs Python 3.11, like Blender)."""
    _run([sys.executable, str(blender_ext), "validate", str(zip_path)], f"blender_ext.py validate {zip_path.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge blender", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the extension zip")
    build.add_argument("--output", type=Path, default=Path("."), help="folder for the zip (default .)")
    build.add_argument(
        "--platform", action="append", choices=sorted(PLATFORMS), help="bundle wheels for this platform (repeat)"
    )
    build.add_argument("--source", type=Path, default=REPO / "plugins" / "blender", help="the extension's folder")
    build.add_argument("--wheel-dir", type=Path, help="keep downloaded wheels here (default: a temporary folder)")
    build.add_argument("--validate", type=Path, metavar="BLENDER_EXT_PY", help="check the zip with blender_ext.py")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    platforms = args.platform or [this_platform()]
    path = build_extension(output=args.output, platforms=platforms, source=args.source, wheel_dir=args.wheel_dir)
    if args.validate is not None:
        validate(path, args.validate)
    print(path)
    return 0
