"""The host side on a real Python 3.10 (Nuke 15's), in a virtualenv holding only the host
dependencies: it imports without torch or OpenCV, reads and writes EXRs, and round-trips a frame
through the real server."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess

HOST_REQUIREMENTS = [
    "numpy",
    "grpcio>=1.85.1",
    "grpcio-health-checking>=1.85.1",
    "protobuf>=7.35,<8",
    "OpenEXR>=3.3,<4",
]

SCRIPT = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'cv2'} or name.startswith('plateforge_server'):
            raise ImportError('host side must not import ' + name)
sys.meta_path.insert(0, Block())
assert sys.version_info[:2] == (3, 10), sys.version
import numpy as np
from plateforge.client import Client
from plateforge.exr import read_exr, write_exr
from plateforge.frames import Frame
import plateforge.cli.main, plateforge.batch
address, token, folder = sys.argv[1:4]
frame = Frame.from_array(np.random.default_rng(0).random((90, 160, 4)).astype(np.float16), frame_number=7)
write_exr(folder + '/in.exr', frame)
frame = read_exr(folder + '/in.exr').replace(frame_number=7)
with Client(address, token=token) as client:
    for transport in ('unary', 'stream'):
        out = client.process('passthrough', {'plate': frame}, transport=transport).outputs['image']
        assert all(np.array_equal(out.channels[c], frame.channels[c]) for c in frame.channels)
print('host ok on', sys.version.split()[0])
"""


def _python310() -> str | None:
    found = shutil.which("python3.10")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))
    return candidates[-1] if candidates else None


@pytest.mark.slow
def test_host_side_on_python_310(server: ServerProcess, tmp_path: Path) -> None:
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 on this machine")
    venv = REPO / "build" / "py310-host"
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", *HOST_REQUIREMENTS], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr
    tree = REPO / "core"  # the host package alone: the server is not even on the path
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SCRIPT, server.address, server.token or "", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tree)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host ok on 3.10" in result.stdout
