"""Install the Nuke plugin for a Nuke's Python: plateforge nuke install [--nuke-python 3.11] [--target ~/.nuke]

Installs the plateforge client and the wheels it needs (numpy, grpcio, protobuf, OpenEXR), built
for Nuke's Python version and platform, into TARGET/plateforge/lib/pyX.Y; copies the plugin
(init.py, menu.py, gizmos, plateforge_nuke) into TARGET/plateforge/plugin; and adds the plugin
path to TARGET/init.py, once (running again replaces the block it added). Nuke 15 ships Python
3.10, Nuke 16 Python 3.11; install both to share one TARGET. Wheels come from the package index
through pip, or from --find-links DIR with --no-index on a machine without one. The plateforge
wheel itself is built from this checkout unless --wheel gives one.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from plateforge import atomic
from plateforge.errors import PlateforgeError, UsageError

__all__ = [
    "BLOCK_END",
    "BLOCK_START",
    "NUKE_PYTHONS",
    "add_to_init",
    "build_wheel",
    "default_platforms",
    "install",
    "main",
]

#: The Pythons of the Nuke versions plateforge supports (Nuke 15: 3.10, Nuke 16: 3.11).
NUKE_PYTHONS: Final = ("3.10", "3.11")
BLOCK_START: Final = "# >>> plateforge >>> (added by `plateforge nuke install`; replaced when run again)"
BLOCK_END: Final = "# <<< plateforge <<<"
_BLOCK = re.compile(re.escape(BLOCK_START.split(" (")[0]) + r".*?" + re.escape(BLOCK_END) + r"\n?", re.DOTALL)
#: The checkout this module runs from (core/plateforge/cli/nuke.py -> the repository root).
_CHECKOUT = Path(__file__).resolve().parents[3]
#: What a plateforge wheel is built from (core/plateforge and server/plateforge_server).
_SOURCES = ("pyproject.toml", "README.md", "core", "server")


def default_platforms() -> list[str]:
    """pip platform tags for this machine's OS and CPU, newest first, as Nuke's own builds need."""
    machine = platform.machine().lower()
    if sys.platform == "win32":
        return ["win_amd64"]
    if sys.platform == "darwin":
        arch = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        return [f"macosx_{v}_{arch}" for v in ("14_0", "13_0", "12_0", "11_0")] + ["macosx_11_0_universal2"]
    arch = "aarch64" if machine in ("arm64", "aarch64") else "x86_64"
    # Nuke 15/16 run on glibc 2.28 (Rocky 8) and later.
    return [f"manylinux_2_{v}_{arch}" for v in (28, 27, 26, 24, 17)] + [f"manylinux2014_{arch}"]


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise PlateforgeError(f"{what} failed (exit {result.returncode}):\n{tail}")


def build_wheel(out_dir: Path, *, checkout: Path = _CHECKOUT) -> Path:
    """Build the plateforge wheel from ``checkout`` into ``out_dir``; its path. The sources are
    copied to a temporary folder first, so the checkout's build/ is never touched."""
    missing = [name for name in _SOURCES if not (checkout / name).exists()]
    if missing:
        raise UsageError(f"{checkout} is not a plateforge checkout (no {', '.join(missing)}); pass --wheel")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plateforge-wheel-") as temp:
        source = Path(temp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in _SOURCES:
            item = checkout / name
            if item.is_dir():
                shutil.copytree(item, source / name, ignore=ignore)
            else:
                source.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, source / name)
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", temp, str(source)],
            "building the plateforge wheel",
        )
        built = sorted(Path(temp).glob("plateforge-*.whl"))
        if not built:
            raise PlateforgeError("pip built no plateforge wheel")
        final = out_dir / built[0].name
        shutil.copy2(built[0], final)
    return final


def add_to_init(init_py: Path, plugin_dir: Path) -> bool:
    """Make ``init_py`` add ``plugin_dir`` to Nuke's plugin path, in one marked block: added once,
    replaced in place on later runs, the rest of the file untouched. True when the file changed."""
    block = f"{BLOCK_START}\nimport nuke\n\nnuke.pluginAddPath({str(plugin_dir)!r})\n{BLOCK_END}\n"
    try:
        text = init_py.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {init_py}: {error}") from None
    if _BLOCK.search(text):
        updated = _BLOCK.sub(lambda _: block, text, count=1)
    else:
        updated = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + block
    if updated == text:
        return False
    init_py.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(init_py, updated, keep_mode=True)
    return True


def install(
    *,
    target: Path,
    nuke_python: str,
    wheel: Path | None = None,
    platforms: Sequence[str] | None = None,
    find_links: Sequence[str] = (),
    no_index: bool = False,
    plugin_source: Path | None = None,
) -> dict[str, Path]:
    """Install the client for ``nuke_python`` and the plugin under ``target``; the paths made."""
    if nuke_python not in NUKE_PYTHONS:
        raise UsageError(f"--nuke-python {nuke_python!r} is not a supported Nuke Python; use one of {NUKE_PYTHONS}")
    plugin_source = plugin_source or _CHECKOUT / "plugins" / "nuke"
    if not (plugin_source / "init.py").is_file() or not (plugin_source / "gizmos").is_dir():
        raise UsageError(f"the Nuke plugin is not at {plugin_source}; run from a plateforge checkout")
    if wheel is not None and not wheel.is_file():
        raise UsageError(f"--wheel {wheel} does not exist")
    root = target.expanduser().resolve() / "plateforge"
    lib = root / "lib" / f"py{nuke_python}"
    plugin = root / "plugin"
    with tempfile.TemporaryDirectory(prefix="plateforge-nuke-") as temp:
        wheel = wheel or build_wheel(Path(temp))
        with atomic.replace_folder(lib) as staging:
            command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
            command += ["--target", str(staging), "--python-version", nuke_python, "--implementation", "cp"]
            command += ["--only-binary=:all:"]
            for tag in platforms or default_platforms():
                command += ["--platform", tag]
            for link in find_links:
                command += ["--find-links", link]
            if no_index:
                command.append("--no-index")
            _run([*command, str(wheel)], f"installing the plateforge client for Python {nuke_python}")
            # The wheel carries the server too; it needs torch, which Nuke's Python never has.
            shutil.rmtree(staging / "plateforge_server", ignore_errors=True)
            shutil.rmtree(staging / "plateforge" / "server", ignore_errors=True)  # the old path's shim
    with atomic.replace_folder(plugin) as staging:
        shutil.copytree(plugin_source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    init_py = target.expanduser().resolve() / "init.py"
    add_to_init(init_py, plugin)
    return {"lib": lib, "plugin": plugin, "init": init_py}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge nuke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("install",))
    parser.add_argument(
        "--nuke-python", default="3.11", choices=NUKE_PYTHONS, help="Nuke's Python version (default 3.11, Nuke 16)"
    )
    parser.add_argument("--target", default="~/.nuke", help="the Nuke user folder (default ~/.nuke)")
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="pip platform tag of Nuke's machine, repeatable (default: this machine's)",
    )
    parser.add_argument("--wheel", type=Path, help="a plateforge wheel to install (default: built from this checkout)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR", help="look for wheels here too")
    parser.add_argument("--no-index", action="store_true", help="do not use the package index (offline)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    made = install(
        target=Path(args.target),
        nuke_python=args.nuke_python,
        wheel=args.wheel,
        platforms=args.platform or None,
        find_links=args.find_links,
        no_index=args.no_index,
    )
    print(f"plateforge client for Nuke's Python {args.nuke_python}: {made['lib']}")
    print(f"plugin: {made['plugin']}")
    print(f"Nuke loads it from: {made['init']}")
    return 0
