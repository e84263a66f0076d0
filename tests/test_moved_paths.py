"""Public paths that moved (issue 20) still import for one release, warning where they moved."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: old module -> new module.
MOVED = {
    "plateforge.synthetic": "plateforge.shots.synthetic",
    "plateforge.dailies": "plateforge.shots.dailies",
    "plateforge.relit": "plateforge.shots.relit",
}

CHECK = """
import importlib, sys, warnings
old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    moved = importlib.import_module(old)
assert moved is importlib.import_module(new), (moved, new)
messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
assert any(new in m for m in messages), messages
print("ok")
"""


@pytest.mark.parametrize(("old", "new"), list(MOVED.items()), ids=list(MOVED))
def test_an_old_path_warns_and_is_the_new_module(old: str, new: str) -> None:
    # A fresh interpreter: the warning is raised once, on the first import.
    result = subprocess.run([sys.executable, "-c", CHECK, old, new], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_old_from_imports_still_work() -> None:
    code = "from plateforge.synthetic import make_shot; from plateforge.shots.synthetic import make_shot as m; "
    code += "assert make_shot is m; print('ok')"
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
