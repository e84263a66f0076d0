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
    "plateforge.synthetic",
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
    "plateforge.cli.lineage",
]

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'cv2', 'diffusers', 'safetensors', 'kornia',
                                  'PyOpenColorIO', 'c2pa', 'av'}:
            raise ImportError('host side must not import ' + name)
        if name.startswith('plateforge.server'):
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
    "path", [pytest.param(p, id=str(p.relative_to(REPO))) for p in sorted((REPO / "core").rglob("*.py"))]
)
def test_host_code_parses_as_python_310(path: object) -> None:
    source = path.read_text()  # type: ignore[attr-defined]
    ast.parse(source, filename=str(path), feature_version=(3, 10))
