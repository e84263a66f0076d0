"""ruff and mypy (strict) are part of the test run, so CI fails on either."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_ruff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


#: What mypy checks: both packages, the benchmarks, and the Nuke plugin against types-nuke.
MYPY_TARGETS = (
    "core/plateforge",
    "server/plateforge_server",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "bench").glob("*.py")),
    "plugins/nuke/plateforge_nuke",
    "plugins/nuke/init.py",
    "plugins/nuke/menu.py",
)


def test_mypy_strict() -> None:
    # The plain configuration (pyproject.toml's [tool.mypy]): the folder tree is the import tree.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *MYPY_TARGETS], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr
