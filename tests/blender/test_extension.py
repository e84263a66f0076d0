"""The Blender extension in real Blender (bpy 5.0.1 in its own virtualenv, no torch there).

The virtualenv (build/blender-venv) is made on first use and reused. The extension zip is built
by ``plateforge blender build``, checked by Blender's own ``blender_ext.py validate``, installed
through Blender's extensions API into a private user folder, and each scenario runs as a script
under that Python against a real server process. The bundled wheels are what the scripts import:
the virtualenv holds bpy (and its numpy) only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from plateforge.exr import read_exr
from tests.blender.conftest import VENV
from tests.conftest import REPO, ServerProcess, start_server

pytestmark = [pytest.mark.blender, pytest.mark.slow]

WHEELS = REPO / "build" / "blender-wheels"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def blender_ext(blender_python: Path) -> Path:
    found = sorted(VENV.glob("lib/python3.11/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert found, "blender_ext.py not found in the bpy package"
    return found[-1]


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zip")
    result = subprocess.run(
        [sys.executable, "-m", "plateforge.cli.main", "blender", "build", "--output", str(out),
         "--wheel-dir", str(WHEELS)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def blender_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private Blender user folder, cache and temp: nothing of the user's Blender is touched."""
    root = tmp_path_factory.mktemp("blender-user")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "BLENDER_USER_RESOURCES": str(root / "resources"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": str(HERE),
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("BLENDER_USER_RESOURCES", "XDG_CACHE_HOME", "TMPDIR"):
        Path(env[key]).mkdir(parents=True)
    return env


def run(
    python: Path, env: dict[str, str], script: str, *args: str, timeout: float = 240, cwd: Path | None = None
) -> str:
    result = subprocess.run(
        [str(python), str(HERE / script), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    output = "\n".join(line for line in (result.stdout + result.stderr).splitlines() if "Saved:" not in line)
    if result.returncode < 0:  # a crash (signal 11) is named, not just a number
        how = f"killed by {signal.Signals(-result.returncode).name}"
    else:
        how = f"exit {result.returncode}"
    assert result.returncode == 0, f"{script} failed ({how}):\n{output[-6000:]}"
    return output


@pytest.fixture(scope="session")
def installed(blender_python: Path, blender_ext: Path, extension_zip: Path, blender_env: dict[str, str]) -> Path:
    output = run(blender_python, blender_env, "bl_install.py", str(extension_zip))
    assert "installed ok" in output, output
    return blender_python


def test_zip_passes_blenders_own_validation(blender_python: Path, blender_ext: Path, extension_zip: Path) -> None:
    result = subprocess.run(
        [str(blender_python), str(blender_ext), "validate", str(extension_zip)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    names = zipfile.ZipFile(extension_zip).namelist()
    for wheel in ("grpcio-", "grpcio_health_checking-", "protobuf-", "openexr-", "plateforge-"):
        assert any(n.startswith("wheels/" + wheel) for n in names), (wheel, names)
    assert not any(n.startswith("wheels/numpy") or "torch" in n for n in names), names


def test_install_imports_the_bundled_wheels(installed: Path, blender_env: dict[str, str]) -> None:
    venv_packages = {p.name.lower() for p in VENV.glob("lib/python3.11/site-packages/*")}
    assert not {"grpc", "openexr", "plateforge"} & venv_packages, "the virtualenv must hold bpy only"


def test_node_bake_render_matches_the_server(
    installed: Path, blender_env: dict[str, str], server: ServerProcess, tmp_path: Path
) -> None:
    output = run(installed, blender_env, "bl_node.py", server.address, server.token or "", str(tmp_path))
    for line in ("passthrough ok", "idempotent ok", "cleanup ok", "missing server reported", "all ok"):
        assert line in output, output


def test_render_layers_pass_as_input(
    installed: Path, blender_env: dict[str, str], server: ServerProcess, tmp_path: Path
) -> None:
    output = run(installed, blender_env, "bl_render_layers.py", server.address, server.token or "", str(tmp_path))
    assert "render layers ok" in output, output


def test_headless_render_bakes_missing_frames_first(
    installed: Path, blender_env: dict[str, str], server: ServerProcess, tmp_path: Path
) -> None:
    env = {**blender_env, "PLATEFORGE_SERVER": server.address, "PLATEFORGE_TOKEN": server.token or ""}
    assert "saved" in run(installed, env, "bl_farm.py", "save", str(tmp_path))
    # A farm node that cannot reach the server fails the task, rendering nothing stale or empty.
    dead = {**env, "PLATEFORGE_SERVER": "127.0.0.1:9"}
    failed = subprocess.run(
        [str(installed), str(HERE / "bl_farm.py"), "render", str(tmp_path)],
        env=dead, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert failed.returncode != 0 and "bake before render failed: server 127.0.0.1:9 unavailable" in failed.stderr
    assert not (tmp_path / "render").exists()
    output = run(installed, env, "bl_farm.py", "render", str(tmp_path))
    assert "sent 2 of 2 frames" in output and "farm ok" in output, output


def test_auto_start_runs_a_local_server_until_disabled(installed: Path, blender_env: dict[str, str]) -> None:
    env = {**blender_env, "PLATEFORGE_MODELS_DIR": str(REPO / "build" / "test-no-models")}
    command = f"{sys.executable} -m plateforge_server --device cpu"
    output = run(installed, env, "bl_autostart.py", command)
    assert "autostart ok" in output, output


def test_train_from_keyframes_then_use_the_model(
    installed: Path, blender_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own server and models folder: the model it publishes must not reach the other tests.
    monkeypatch.setenv("PLATEFORGE_MODELS_DIR", str(tmp_path / "models"))
    server = start_server("--jobs-dir", str(tmp_path / "jobs"))
    try:
        output = run(installed, blender_env, "bl_train.py", server.address, server.token or "", str(tmp_path))
    finally:
        server.stop()
    assert "unlicensed refused" in output and "artist credited ok" in output and "train ok" in output, output
    # The Train node's loss and preview images hold exactly the PNGs the server wrote for its job.
    (job_id,) = re.findall(r"^pictures shown: (\S+)$", output, re.MULTILINE)
    for kind in ("loss", "preview"):
        with PIL.Image.open(tmp_path / "jobs" / job_id / "train" / f"{kind}.png") as png:
            written = np.asarray(png.convert("RGB"))
        shown = np.load(tmp_path / f"{kind}-in-blender.npy")
        assert shown.shape == (*written.shape[:2], 4), (kind, shown.shape, written.shape)
        # Blender's rows run bottom-up; an 8-bit PNG's bytes read back as byte / 255.
        assert np.array_equal(np.rint(shown[::-1, :, :3] * 255).astype(np.uint8), written), kind
        assert (shown[..., 3] == 1.0).all(), kind


def test_bake_button_esc_offline_and_save(
    installed: Path, blender_env: dict[str, str], server: ServerProcess, tmp_path: Path
) -> None:
    output = run(installed, blender_env, "bl_button.py", "bake", server.address, server.token or "", str(tmp_path))
    for line in ("esc ok", "button bake ok", "offline up to date ok", "saved ok"):
        assert line in output, output
    # With the add-on, the saved node is live again, settings and cache found (no server needed).
    output = run(installed, blender_env, "bl_button.py", "reopen", server.address, server.token or "", str(tmp_path))
    assert "reopen ok" in output, output


def test_saved_shot_renders_its_cache_where_the_addon_is_not_installed(
    installed: Path,
    blender_env: dict[str, str],
    server: ServerProcess,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run(installed, blender_env, "bl_button.py", "bake", server.address, server.token or "", str(tmp_path))
    # A fresh user folder where the extension was never installed: another artist, a farm node.
    bare = tmp_path_factory.mktemp("bare-blender")
    env = {**blender_env, "HOME": str(bare), "BLENDER_USER_RESOURCES": str(bare / "resources"),
           "XDG_CACHE_HOME": str(bare / "cache"), "TMPDIR": str(bare / "tmp")}  # fmt: skip
    for key in ("BLENDER_USER_RESOURCES", "XDG_CACHE_HOME", "TMPDIR"):
        Path(env[key]).mkdir(parents=True)
    output = run(installed, env, "bl_noaddon.py", str(tmp_path / "shot.blend"), str(tmp_path / "bare" / "####.exr"))
    assert "rendered without the add-on" in output, output
    cache = sorted((tmp_path / "plateforge_cache" / "plateforge" / "outputs").glob("image.*.exr"))
    assert len(cache) == 12, cache
    for cached in cache:
        frame = int(cached.name.split(".")[1])
        rendered, expected = read_exr(tmp_path / "bare" / f"{frame:04d}.exr"), read_exr(cached)
        for c in "RGBA":
            assert np.array_equal(rendered.channels[c], expected.channels[c]), f"frame {frame} channel {c}"


def test_bake_in_an_unsaved_file_asks_to_save_first(
    installed: Path, blender_env: dict[str, str], server: ServerProcess, tmp_path: Path
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    output = run(installed, blender_env, "bl_button.py", "unsaved", server.address, server.token or "",
                 str(tmp_path / "shot"), cwd=workdir)  # fmt: skip
    assert "unsaved ok" in output, output
    assert list(workdir.iterdir()) == []
