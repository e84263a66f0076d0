"""The bpy virtualenv the Blender tests and the benchmark run in: build/blender-venv, made with
python3.11 (Blender's Python) on first use and reused while it holds the same bpy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

BPY = "bpy==5.0.1"
VENV = REPO / "build" / "blender-venv"


def _python311() -> str:
    found = shutil.which("python3.11")
    if found is None:
        pytest.fail("the Blender tests need python3.11 (Blender's Python) on PATH")
    return found


@pytest.fixture(scope="session")
def blender_python() -> Path:
    """build/blender-venv's Python with bpy, made once (a marker records what was installed)."""
    python = VENV / "bin" / "python"
    marker = VENV / "plateforge-bpy.txt"
    if not (python.exists() and marker.exists() and marker.read_text() == BPY):
        if VENV.exists():
            shutil.rmtree(VENV)
        subprocess.run([_python311(), "-m", "venv", str(VENV)], check=True, timeout=300)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", BPY], capture_output=True, text=True, timeout=1800
        )
        assert install.returncode == 0, install.stdout + install.stderr
        marker.write_text(BPY)
    return python
