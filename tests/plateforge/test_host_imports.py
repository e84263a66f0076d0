"""The host side (what Nuke and Blender import) loads without torch or OpenCV and parses as
Python 3.10."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

HOST_MODULES = [
    "plateforge",
    "plateforge.client",
    "plateforge.codec",
    "plateforge.shm",
    "plateforge.exr",
    "plateforge.frames",
    "plateforge.batch",
    "plateforge.provenance",
    "plateforge.shots.synthetic",
    "plateforge.metrics",
    "plateforge.contactsheet",
    "plateforge.cli.main",
    "plateforge.cli.process",
    "plateforge.cli.models",
    "plateforge.cli.info",
    "plateforge.cli.demo",
    "plateforge.cli.provenance",
    "plateforge.modelcards",
    "plateforge.jobs_client",
    "plateforge.paths",
    "plateforge.cli.train",
    "plateforge.cli.jobs",
    "plateforge.cli.job",
    "plateforge.cli.serve",
    "plateforge.cli.base_model",
    "plateforge.cli.proxy",
    "plateforge.cli.credentials",
    "plateforge.review",
    "plateforge.review.colour",
    "plateforge.review.media",
    "plateforge.review.proxy",
    "plateforge.review.signing",
    "plateforge.lineage",
    "plateforge.manifest_format",
    "plateforge.cli.lineage",
    "plateforge.commands",
]

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'cv2', 'diffusers', 'safetensors', 'kornia',
                                  'PyOpenColorIO', 'c2pa', 'av'}:
            raise ImportError('host side must not import ' + name)
        if name.startswith('plateforge_server'):
            raise ImportError('host side must not import ' + name)
sys.meta_path.insert(0, Block())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print('ok')
"""


def test_host_side_imports_without_torch_or_opencv() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKER, *HOST_MODULES], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=str(p.relative_to(REPO))) for p in sorted((REPO / "core" / "plateforge").rglob("*.py"))]
)
def test_host_code_parses_as_python_310(path: object) -> None:
    source = path.read_text()  # type: ignore[attr-defined]
    ast.parse(source, filename=str(path), feature_version=(3, 10))


WITHOUT_SERVER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == 'plateforge_server' or name.startswith('plateforge_server.'):
            raise ModuleNotFoundError('No module named ' + repr(name), name=name)
sys.meta_path.insert(0, Block())
from plateforge.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verb", ["serve", "base-model"])
def test_server_verbs_without_the_server_say_how_to_install_it(verb: str) -> None:
    """The host CLI finds the server package by name when a verb needs it (it never imports it):
    a Python without it gets one line saying how to install it, exit status 2."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER, verb, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"plateforge {verb}: error: the plateforge server is not installed" in result.stderr, result.stderr
    assert "pip install" in result.stderr and "plateforge[server]" in result.stderr
    assert "Traceback" not in result.stderr
