"""plateforge nuke install for Nuke's Pythons (3.10 and 3.11): real wheels from pip for that
Python, then the installed client run by that Python (without site-packages) against a real
server, and the plugin finding the client where the installer put it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plateforge.cli.main import main
from plateforge.cli.nuke import BLOCK_START, add_to_init, build_wheel, default_platforms, install
from plateforge.errors import UsageError
from tests.conftest import REPO, ServerProcess

#: Run by the target Python with -S (no site-packages): only the installed folder is on sys.path.
SCRIPT = r"""
import sys
lib, plugin, repo, address, token = sys.argv[1:6]
sys.path[:0] = [plugin, repo]
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'cv2'} or name.startswith('plateforge_server'):
            raise ImportError('host side must not import ' + name)
sys.meta_path.insert(0, Block())
from tests.plateforge.hosts.nuke_standin import installed
installed()
import plateforge_nuke
assert plateforge_nuke.lib_dir() == lib, (plateforge_nuke.lib_dir(), lib)
sys.path.insert(0, plateforge_nuke.lib_dir())
import numpy, grpc, OpenEXR
import plateforge
assert plateforge.__file__.startswith(lib), plateforge.__file__
assert numpy.__file__.startswith(lib), numpy.__file__
from plateforge.hosts.connection import ServerSettings, check_server
import plateforge_nuke.nodes, plateforge_nuke.train, plateforge_nuke.settings
status = check_server(ServerSettings(address, token))
assert status.connected and 'cleanup-classical' in status.model_names, status.message
print('nuke client ok on', sys.version.split()[0])
"""


def _python(version: str) -> str | None:
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = build_wheel(tmp_path_factory.mktemp("wheel"))
    assert built.name.startswith("plateforge-") and built.suffix == ".whl"
    return built


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.11"])
def test_install_for_nukes_python(version: str, wheel: Path, server: ServerProcess, tmp_path: Path) -> None:
    python = _python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    target = tmp_path / ".nuke"
    target.mkdir()
    (target / "init.py").write_text("# the artist's own init.py\nimport os\n")
    args = ["nuke", "install", "--nuke-python", version, "--target", str(target), "--wheel", str(wheel)]
    if version == "3.10":
        # The offline path: a studio's wheelhouse (fetched here once) and no package index.
        house = tmp_path / "wheelhouse"
        fetch = [sys.executable, "-m", "pip", "download", "-q", "-d", str(house), "--only-binary=:all:"]
        fetch += ["--python-version", version, "--implementation", "cp", str(wheel)]
        for tag in default_platforms():
            fetch += ["--platform", tag]
        subprocess.run(fetch, check=True, capture_output=True, timeout=600)
        args += ["--no-index", "--find-links", str(house)]
    assert main(args) == 0
    lib = target / "plateforge" / "lib" / f"py{version}"
    plugin = target / "plateforge" / "plugin"
    tag = "cpython-" + version.replace(".", "")
    assert any(tag in p.name for p in lib.glob("OpenEXR*.so")), sorted(p.name for p in lib.iterdir())
    assert any(tag in p.name for p in (lib / "numpy" / "_core").glob("_multiarray_umath*.so"))
    assert (plugin / "gizmos" / "PF_Cleanup.gizmo").is_file() and (plugin / "menu.py").is_file()
    assert not list(plugin.rglob("__pycache__"))
    assert not (lib / "plateforge_server").exists()
    assert not (lib / "plateforge" / "server").exists()  # torch side: never used inside Nuke

    result = subprocess.run(
        [python, "-S", "-c", SCRIPT, str(lib), str(plugin), str(REPO), server.address, server.token or ""],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"nuke client ok on {version}" in result.stdout

    # Twice: the client is replaced, the plugin path is in init.py once, the artist's lines kept.
    assert main(args) == 0
    text = (target / "init.py").read_text()
    assert text.count(BLOCK_START) == 1 and text.count("nuke.pluginAddPath(") == 1
    assert text.startswith("# the artist's own init.py\nimport os\n") and repr(str(plugin)) in text
    assert sorted(p.name for p in (target / "plateforge" / "lib").iterdir()) == [f"py{version}"]


def test_init_block_is_added_once_and_replaced_in_place(tmp_path: Path) -> None:
    init_py = tmp_path / "init.py"
    assert add_to_init(init_py, tmp_path / "a")
    assert not add_to_init(init_py, tmp_path / "a")
    init_py.write_text(init_py.read_text() + "print('after')\n")
    assert add_to_init(init_py, tmp_path / "b")
    text = init_py.read_text()
    assert text.count(BLOCK_START) == 1 and repr(str(tmp_path / "b")) in text and "print('after')" in text
    assert repr(str(tmp_path / "a")) not in text


def test_refuses_unknown_pythons_and_missing_wheels(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"use one of \('3.10', '3.11'\)"):
        install(target=tmp_path, nuke_python="3.9")
    with pytest.raises(UsageError, match="does not exist"):
        install(target=tmp_path, nuke_python="3.11", wheel=tmp_path / "nope.whl")
    with pytest.raises(UsageError, match="Nuke plugin is not at"):
        install(target=tmp_path, nuke_python="3.11", plugin_source=tmp_path)
    assert not (tmp_path / "plateforge").exists() and not (tmp_path / "init.py").exists()
