"""generative-fill served by a real server process from a licensed local folder, never the network."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import ModelIntegrityError, ParameterError
from plateforge.exr import read_exr, write_exr
from plateforge.frames import Box, Frame
from plateforge.modelcards import read_model_card
from plateforge.models import resolve_params
from plateforge_server.generative import verify_pipeline_folder
from plateforge_server.generative.inpaint import (
    ENCODING,
    TOOL,
    decode_linear,
    encode_linear,
    install_base_model,
)
from plateforge_server.registry import Registry
from plateforge_server.tools.base import ToolCall
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.generative.conftest import LICENCE, needs_generative

needs_generative()

FAST = {"prompt": "a grey wall", "steps": 2, "guidance": 2.0, "seed": 3, "tile": 64, "overlap": 16}


def _plate(width: int = 48, height: int = 40) -> tuple[Frame, Frame]:
    """A plate with an offset data window, half RGB, float A and Z; and a mask with a hole in it."""
    rng = np.random.default_rng(7)
    window = Box.from_size(width, height, x=5, y=-3)
    display = Box.from_size(64, 48)
    rgb = (rng.random((height, width, 3)) * 4.0).astype(np.float16)  # scene-linear, above 1 too
    channels = {
        "R": rgb[:, :, 0],
        "G": rgb[:, :, 1],
        "B": rgb[:, :, 2],
        "A": np.ones((height, width), np.float32),
        "Z": rng.random((height, width)).astype(np.float32),
    }
    plate = Frame(channels, window, display, frame_number=1001)
    hole = np.zeros((height, width), np.float32)
    hole[10:26, 12:30] = 1.0
    hole[26, 12:30] = 0.5  # a soft edge
    mask = Frame({"A": hole}, window, display, frame_number=1001)
    return plate, mask


def test_encoding_round_trips_scene_linear() -> None:
    linear = np.array([0.0, 0.001, 0.18, 1.0, 16.0, 1000.0], np.float32)
    encoded = encode_linear(linear)
    assert encoded.min() >= 0.0 and encoded.max() < 1.0 and np.all(np.diff(encoded) > 0)
    assert abs(float(encoded[2]) - 0.43) < 0.01  # mid grey lands mid-range, as on a display
    np.testing.assert_allclose(decode_linear(encoded), linear, rtol=1e-3, atol=1e-6)
    assert encode_linear(np.array([-1.0], np.float32))[0] == 0.0


def test_the_network_guard_sees_a_lookup() -> None:
    """The guard every generative test runs under would fail a test that looked a host up."""
    from tests.plateforge_server.generative import conftest

    with contextlib.suppress(OSError):
        socket.getaddrinfo("huggingface.co", 443)
    seen = list(conftest._ATTEMPTS)
    conftest._ATTEMPTS.clear()
    assert seen == [("socket.getaddrinfo", "huggingface.co")]


@pytest.mark.slow
def test_fill_through_a_real_server(tiny_pipeline: Path, tmp_path: Path, no_network: Path) -> None:
    models = tmp_path / "models"
    folder = install_base_model(tiny_pipeline, models, name="gen-fill", version="1")
    card = read_model_card(folder)
    base = verify_pipeline_folder(tiny_pipeline)
    assert card["base_model"] == {"name": "tiny-inpaint", "licence": LICENCE, "sha256": base.sha256}
    plate, mask = _plate()
    write_exr(tmp_path / "plate.1001.exr", plate)
    write_exr(tmp_path / "mask.1001.exr", mask)

    proc = start_server("--models-dir", str(models))
    try:
        with Client(proc.address, token=TOKEN, timeout=300, retries=0) as client:
            info = {m.name: m for m in client.list_models()}["gen-fill"]
            assert info.tool == TOOL and [i.name for i in info.inputs] == ["plate", "mask"]
            assert {"prompt", "steps", "guidance", "seed", "strength", "tile", "overlap"} <= {
                p.name for p in info.parameters
            }
            assert "tiny-inpaint" in info.provenance and ENCODING in info.provenance
            result = client.process(
                "gen-fill",
                {"plate": read_exr(tmp_path / "plate.1001.exr"), "mask": read_exr(tmp_path / "mask.1001.exr")},
                params=FAST,
            )
            again = client.process("gen-fill", {"plate": plate, "mask": mask}, params=FAST)
            with pytest.raises(ParameterError, match="denoise no step"):
                client.process("gen-fill", {"plate": plate, "mask": mask}, params={**FAST, "strength": 0.2})
    finally:
        assert proc.stop() == 0
    write_exr(tmp_path / "out.1001.exr", result.outputs["image"])
    out = read_exr(tmp_path / "out.1001.exr")

    assert out.data_window == plate.data_window and out.display_window == plate.display_window
    assert sorted(out.channels) == sorted(plate.channels)
    assert {n: out.pixel_type(n) for n in out.channels} == {n: plate.pixel_type(n) for n in plate.channels}
    hole = mask.channels["A"] > 0
    for name in plate.channels:
        # Unmasked pixels (and every channel the tool does not touch) are the plate's, bit for bit.
        assert np.array_equal(out.channels[name][~hole], plate.channels[name][~hole]), name
    for name in ("A", "Z"):
        assert np.array_equal(out.channels[name], plate.channels[name])
    filled = out.stack(("R", "G", "B"))[hole]
    assert np.isfinite(filled).all() and filled.min() >= 0.0
    assert not np.array_equal(filled, plate.stack(("R", "G", "B"))[hole])  # something was painted in
    # Same seed, same result (CPU is deterministic).
    assert np.array_equal(again.outputs["image"].stack(("R", "G", "B")), result.outputs["image"].stack(("R", "G", "B")))

    said = {k: v for k, v in out.attributes.items() if k.startswith("plateforge/")}
    assert said["plateforge/model"] == "gen-fill" and said["plateforge/tool"] == TOOL
    assert said["plateforge/modelHash"] == card["weights_sha256"]
    assert said["plateforge/baseModel"] == "tiny-inpaint"
    assert said["plateforge/baseModelLicence"] == LICENCE
    assert said["plateforge/baseModelSha256"] == base.sha256
    assert said["plateforge/encoding"] == ENCODING
    assert json.loads(said["plateforge/params"])["prompt"] == "a grey wall"


def test_server_refuses_a_pipeline_changed_after_install(tiny_pipeline: Path, tmp_path: Path, no_network: Path) -> None:
    """Served from a card, the pipeline is proved again at load: a changed file fails the call, naming it."""
    models = tmp_path / "models"
    install_base_model(tiny_pipeline, models, name="gen-fill", version="1")
    weights = tiny_pipeline / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    registry = Registry(models_dir=models)
    with pytest.raises(ModelIntegrityError, match=r"diffusion_pytorch_model\.safetensors' has sha256"):
        registry.get("gen-fill")


def _full_fill(registry: Registry, plate: Frame, mask: Frame, **params: object) -> np.ndarray:
    with registry.use("gen-fill") as model:
        call = ToolCall(
            info=model.info,
            inputs={"plate": [plate], "mask": [mask]},
            params=resolve_params(model.info, {**FAST, **params}),
            target_frame=plate.frame_number,
        )
        out = model.tool.run(model.state, call)["image"]
    return encode_linear(out.stack(("R", "G", "B")))


@pytest.mark.slow
def test_a_frame_larger_than_a_tile_is_filled_in_feathered_tiles(
    tiny_pipeline: Path, tmp_path: Path, no_network: Path
) -> None:
    """Tiles of 32 every 16 pixels over a 112x32 frame: every masked pixel is filled, reproducibly,
    and the fill depends on the tiling (so the tiles really ran). Whether the seams are invisible
    cannot be judged on a random pipeline's noise; the blend weights themselves are tested in
    tests/plateforge_server/inference/test_tiling.py."""
    install_base_model(tiny_pipeline, tmp_path / "models", name="gen-fill", version="1")
    registry = Registry(models_dir=tmp_path / "models")
    width, height = 112, 32
    window = Box.from_size(width, height)
    ramp = np.linspace(0.05, 2.0, width, dtype=np.float32)[None, :].repeat(height, 0)
    plate = Frame({c: ramp.copy() for c in "RGB"}, window, window, frame_number=1)
    hole = np.zeros((height, width), np.float32)
    hole[4:28, 8:72] = 1.0
    mask = Frame({"A": hole}, window, window, frame_number=1)
    tiled = _full_fill(registry, plate, mask, tile=32, overlap=16)
    assert np.isfinite(tiled).all()
    assert np.array_equal(tiled, _full_fill(registry, plate, mask, tile=32, overlap=16))
    assert np.array_equal(tiled[hole == 0], encode_linear(plate.stack(("R", "G", "B")))[hole == 0])
    assert not np.array_equal(tiled, _full_fill(registry, plate, mask, tile=128, overlap=16))
