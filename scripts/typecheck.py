"""Type-check plateforge, the benchmarks and the Nuke plugin (against types-nuke) with mypy
(strict, per pyproject.toml).

mypy cannot follow setuptools' package-dir mapping (core/ -> plateforge, server/ ->
plateforge.server), so this lays the package out as Python sees it — a tree of symlinks under
build/typecheck/ — runs mypy there, and maps reported paths back to the repository's.
Usage: python scripts/typecheck.py [extra mypy args]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def lay_out(tree: Path = TREE) -> Path:
    """Symlink the package as Python imports it (``tree/plateforge``); return that folder."""
    if tree.exists():
        shutil.rmtree(tree)
    package = tree / "plateforge"
    package.mkdir(parents=True)
    for entry in (ROOT / "core").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "server").symlink_to(ROOT / "server")
    return package


def main() -> int:
    package = lay_out()
    command = [
        sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
        "--exclude", r"/v1/", "plateforge", *map(str, sorted((ROOT / "bench").glob("*.py"))), *sys.argv[1:],
    ]
    result = subprocess.run(command, cwd=TREE, capture_output=True, text=True)
    output = (result.stdout + result.stderr).replace("plateforge/server/", "server/").replace("plateforge/", "core/")
    print(output, end="")
    del package
    # The Nuke plugin, against the types-nuke stubs; it imports plateforge from the tree above.
    nuke = ROOT / "plugins" / "nuke"
    plugin = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    plugin += [str(nuke / "plateforge_nuke"), str(nuke / "init.py"), str(nuke / "menu.py"), *sys.argv[1:]]
    nuke_result = subprocess.run(plugin, cwd=TREE, capture_output=True, text=True)
    print(nuke_result.stdout + nuke_result.stderr, end="")
    return result.returncode or nuke_result.returncode


if __name__ == "__main__":
    sys.exit(main())
