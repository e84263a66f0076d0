"""plateforge blender build: the manifest it writes and the platforms it knows."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import tomllib

from plateforge.cli import blender
from plateforge.errors import UsageError
from tests.conftest import REPO


def test_manifest_gets_platforms_and_wheels_as_top_level_keys() -> None:
    source = (REPO / "plugins" / "blender" / "blender_manifest.toml").read_text()
    text = blender._manifest_with(source, platforms=["linux-x64", "windows-x64"], wheels=["a-1-py3-none-any.whl"])
    data = tomllib.loads(text)
    assert data["platforms"] == ["linux-x64", "windows-x64"]
    assert data["wheels"] == ["./wheels/a-1-py3-none-any.whl"]
    assert data["schema_version"] == "1.0.0" and data["blender_version_min"] == "4.2.0"
    assert "network" in data["permissions"]


def test_a_source_manifest_that_sets_wheels_is_refused() -> None:
    with pytest.raises(UsageError, match="wheels"):
        blender._manifest_with('id = "x"\nwheels = []\n', platforms=["linux-x64"], wheels=[])


def test_unknown_platform_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="known"):
        blender.download_wheels("amiga-68k", tmp_path)


def test_every_platform_names_pip_tags() -> None:
    assert set(blender.PLATFORMS) == {"linux-x64", "linux-arm64", "macos-arm64", "macos-x64", "windows-x64"}
    assert blender.this_platform() in blender.PLATFORMS


@pytest.mark.slow
def test_build_writes_a_zip_with_the_add_on_and_its_wheels(tmp_path: Path) -> None:
    wheels = REPO / "build" / "blender-wheels"
    path = blender.build_extension(output=tmp_path, platforms=["linux-x64", "windows-x64"], wheel_dir=wheels)
    names = zipfile.ZipFile(path).namelist()
    assert len(names) == len(set(names)), "a pure-Python wheel was added once per platform"
    assert any(n.endswith("win_amd64.whl") for n in names) and any("manylinux" in n for n in names)
    assert "blender_manifest.toml" in names and "__init__.py" in names and "node.py" in names
    manifest = tomllib.loads(zipfile.ZipFile(path).read("blender_manifest.toml").decode())
    assert sorted(f"wheels/{w.removeprefix('./wheels/')}" for w in manifest["wheels"]) == sorted(
        n for n in names if n.startswith("wheels/")
    )
    assert not any("__pycache__" in n for n in names)
    assert manifest["platforms"] == ["linux-x64", "windows-x64"]
