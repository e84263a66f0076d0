"""plateforge export: each learned model type, trained for a few steps through the real server,
exported over the Export RPC and run by a second runtime (onnxruntime on the CPU, torch.jit.load),
against the server's own output for the same frame.

Tolerance: max abs difference <= 1e-4 in float32. The exported graph performs the same float32
operations as the server's path (encode, the net, decode, the composite), in the same order; what
differs is the kernels (onnxruntime's convolutions and reductions against torch's, and the server's
512-pixel tiles against one whole frame, equal by the net's locality). Those reorder float32 sums:
relative error of a few ulp (1e-7) per op, magnified through the small net's ~20 layers and the
decode (expm1 of values up to ~1) to a few 1e-6 on values of order 1 (measured here: below 1e-5).
1e-4 leaves a 10x margin and still fails at once for any real difference (a wrong channel order,
padding mode or residual is off by 1e-2 or more).

Sizes: 48x40 (a multiple of the small net's stride, 8) and 53x37 (neither side is).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from plateforge.client import Client
from plateforge.errors import LicenceError
from plateforge.export_client import export_model
from plateforge.exports import CARD_KEY, INPUTS_KEY, onnx_metadata, read_export_card
from plateforge.frames import Frame
from plateforge.shots.dailies import make_matte_shot
from plateforge.shots.relit import make_relit_shot
from plateforge.shots.synthetic import make_shot
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.tools.matte.guide import band_of, matte_planes
from tests.plateforge_server.export.helpers import TOKEN, VERSION, Trained, perturbed_copy, serve_models, train_all
from tests.plateforge_server.tools.relight.test_learned import WITH_AOVS

pytestmark = pytest.mark.slow

RGB = ("R", "G", "B")
SIZES = [pytest.param((48, 40), id="48x40"), pytest.param((53, 37), id="53x37")]
MODELS = ["look", "relight", "grade", "paint", "cleanup", "matte"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Trained]]:
    root = tmp_path_factory.mktemp("export")
    models = train_all(root)
    for model in models:
        perturbed_copy(model, root / "models")
    return root / "models", {m.name.removeprefix("x-"): m for m in models}


@pytest.fixture(scope="module")
def client(trained: tuple[Path, dict[str, Trained]]) -> Iterator[Client]:
    with serve_models(trained[0]) as address, Client(address, token=TOKEN, timeout=300.0) as client:
        yield client


def _float(frame: Frame, names: tuple[str, ...]) -> np.ndarray:
    return np.ascontiguousarray(frame.stack(names).astype(np.float32))


def frame_case(kind: str, size: tuple[int, int]) -> tuple[dict[str, Frame], np.ndarray, str, tuple[str, ...]]:
    """(inputs for Process, the export's input tensor (1, C, H, W), the output name, its channels)."""
    width, height = size
    if kind == "matte":
        shot = make_matte_shot(width=width, height=height, frames=1, seed=5)
        plate, clean = _float(shot.plates[0], RGB), _float(shot.cleans[0], RGB)
        planes = matte_planes(plate, clean)
        band = band_of(planes).astype(np.float32)
        stacked = np.concatenate([planes, band[:, :, None]], axis=2)
        inputs = {"plate": Frame.from_array(plate, names=RGB), "clean_plate": Frame.from_array(clean, names=RGB)}
        return inputs, stacked.transpose(2, 0, 1)[None].copy(), "alpha", ("A",)
    if kind == "relight":  # R, G, B then the AOVs the model was trained with, in its declared order
        planes = make_relit_shot(width=width, height=height, frames=1, seed=9).plates[0].stack(WITH_AOVS)
        planes = np.ascontiguousarray(planes.astype(np.float32))
        plate = Frame.from_array(planes, names=WITH_AOVS)
        return {"plate": plate}, planes.transpose(2, 0, 1)[None].copy(), "image", RGB
    shot = make_shot(width=width, height=height, frames=1, seed=7)
    rgb = _float(shot.plates[0], RGB)
    plate = Frame.from_array(rgb, names=RGB)
    if kind in ("look", "grade"):
        return {"plate": plate}, rgb.transpose(2, 0, 1)[None].copy(), "image", RGB
    mask = cleanup_classical.mask_array(shot.masks[0])
    inputs = {"plate": plate, "mask": Frame.from_array(mask[:, :, None], names=("A",))}
    if kind == "paint":
        stacked = np.concatenate([rgb, mask[:, :, None]], axis=2)
        return inputs, stacked.transpose(2, 0, 1)[None].copy(), "image", RGB
    fill = cleanup_classical.fill_plate(rgb, mask, [], [])
    stacked = np.concatenate([rgb, mask[:, :, None], fill.rgb, fill.shown[:, :, None].astype(np.float32)], axis=2)
    return inputs, stacked.transpose(2, 0, 1)[None].copy(), "image", RGB


def served(client: Client, kind: str, inputs: dict[str, Frame], output: str, channels: tuple[str, ...]) -> np.ndarray:
    result = client.process(f"x-{kind}@{VERSION}", inputs, precision="fp32", single_frame=True)
    frame = result.outputs[output]
    return np.stack([frame.channels[c].astype(np.float32) for c in channels])[None]


@pytest.mark.parametrize("kind", MODELS)
def test_onnx_and_torchscript_match_the_server(client: Client, tmp_path: Path, kind: str) -> None:
    onnx_export = export_model(client, name=f"x-{kind}", version=VERSION, fmt="onnx")
    script_export = export_model(client, name=f"x-{kind}", version=VERSION, fmt="torchscript")
    for name, data in {**onnx_export.files, **script_export.files}.items():
        (tmp_path / name).write_bytes(data)
    onnx_file, script_file = tmp_path / f"x-{kind}.onnx", tmp_path / f"x-{kind}.pt"
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"] and [o.name for o in session.get_outputs()] == ["output"]
    assert session.get_inputs()[0].shape[2:] == ["height", "width"]
    # Nuke 15.1+ runs torch 2.1, which reads TorchScript archives of file format versions 1 to 10
    # (caffe2/serialize/versions.h, kMaxSupportedFileFormatVersion = 0xA); the archive says its own.
    with zipfile.ZipFile(script_file) as archive:
        (record,) = [n for n in archive.namelist() if n.endswith("/version")]
        assert 1 <= int(archive.read(record)) <= 10
    script = torch.jit.load(str(script_file))
    graph_inputs = [
        i for i in script.graph.inputs() if i.debugName() != "self" and not i.debugName().startswith("self")
    ]
    assert len(graph_inputs) == 1 and len(list(script.graph.outputs())) == 1
    for size in ((48, 40), (53, 37)):
        inputs, tensor, output, channels = frame_case(kind, size)
        assert tensor.shape[1] == len(json.loads(onnx_metadata(onnx_file)[INPUTS_KEY]))
        expected = served(client, kind, inputs, output, channels)
        from_onnx = session.run(None, {"input": tensor})[0]
        with torch.no_grad():
            from_script = script(torch.from_numpy(tensor)).numpy()
        assert from_onnx.shape == expected.shape == from_script.shape
        # The net must matter: the served result is not just the plate (or the matte's key) passed through.
        unchanged = tensor[:, 6:7] if kind == "matte" else tensor[:, :3]
        assert float(np.abs(expected - unchanged).max()) > 1e-3
        assert float(np.abs(from_onnx - expected).max()) <= TOLERANCE, (kind, size)
        assert float(np.abs(from_script - expected).max()) <= TOLERANCE, (kind, size)


@pytest.mark.parametrize("kind", ["look", "cleanup"])
def test_every_export_carries_the_card(
    client: Client, trained: tuple[Path, dict[str, Trained]], tmp_path: Path, kind: str
) -> None:
    served_card = json.loads((trained[0] / f"x-{kind}" / VERSION / "card.json").read_text())
    for fmt in ("onnx", "flame", "nuke", "torchscript"):
        exported = export_model(client, name=f"x-{kind}", version=VERSION, fmt=fmt)
        folder = tmp_path / fmt
        folder.mkdir()
        for name, data in exported.files.items():
            (folder / name).write_bytes(data)
        model_file = folder / (f"x-{kind}.onnx" if fmt in ("onnx", "flame") else f"x-{kind}.pt")
        card = read_export_card(model_file)
        assert card == served_card
        assert exported.model_hash == served_card["weights_sha256"]
        readme = exported.files["README.md"].decode()
        if kind == "cleanup":  # the classical pre-pass the host must feed, said, not approximated
            assert "What the host must compute first" in readme and "fill_plate(...).shown" in readme
        else:
            assert "What the host must compute first" not in readme
        if fmt in ("onnx", "flame"):
            assert json.loads(onnx_metadata(model_file)[CARD_KEY]) == served_card


def test_export_is_refused_when_a_source_does_not_permit_distribution(tmp_path: Path) -> None:
    models = train_all(tmp_path, uses=("train",), only=("grade",))
    with (
        serve_models(tmp_path / "models") as address,
        Client(address, token=TOKEN, timeout=300.0) as client,
        pytest.raises(LicenceError, match=r"source 'in/img\.1001\.exr'.*permits train, not 'distribute'"),
    ):
        export_model(client, name=models[0].name, version="", fmt="onnx")


@pytest.mark.parametrize("size", SIZES)
def test_cleanup_with_neighbouring_frames_matches_the_server(
    client: Client, tmp_path: Path, size: tuple[int, int]
) -> None:
    """The learned cleanup given its neighbours: the host's fill (aligned neighbours, as the README
    says) and its "shown" plane drive the net's residual gate; the export matches the server."""
    exported = export_model(client, name="x-cleanup", version=VERSION, fmt="onnx")
    (tmp_path / "m.onnx").write_bytes(exported.files["x-cleanup.onnx"])
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    width, height = size
    shot = make_shot(width=width, height=height, frames=5, seed=11)
    plates = [
        Frame.from_array(_float(p, RGB), names=RGB, frame_number=n)
        for p, n in zip(shot.plates, shot.frame_numbers, strict=True)
    ]
    masks = [
        Frame.from_array(cleanup_classical.mask_array(m)[:, :, None], names=("A",), frame_number=n)
        for m, n in zip(shot.masks, shot.frame_numbers, strict=True)
    ]
    target = shot.frame_numbers[2]
    info = next(i for i in client.list_models() if i.name == "x-cleanup" and i.version == VERSION)
    radius = next(s.temporal_radius for s in info.inputs if s.name == "plate")
    assert radius > 0
    call = ToolCall(info=info, inputs={"plate": plates, "mask": masks}, params={}, target_frame=target)
    plate, mask = call.frame("plate"), cleanup_classical.mask_array(call.frame("mask"))
    rgb = plate.stack(RGB)
    neighbours = [
        (f.stack(RGB), cleanup_classical.mask_array(m)) for f, m in cleanup_classical.neighbours_of(call, plate, radius)
    ]
    matrices = cleanup_classical.align_neighbours(rgb, mask, neighbours)
    fill = cleanup_classical.fill_plate(rgb, mask, neighbours, matrices)
    assert fill.shown.any()  # the gate is exercised
    planes = np.concatenate([rgb, mask[:, :, None], fill.rgb, fill.shown[:, :, None].astype(np.float32)], axis=2)
    tensor = planes.transpose(2, 0, 1)[None].astype(np.float32).copy()
    result = client.process(
        f"x-cleanup@{VERSION}", {"plate": plates, "mask": masks}, target_frame=target, precision="fp32"
    )
    expected = np.stack([result.outputs["image"].channels[c].astype(np.float32) for c in RGB])[None]
    got = session.run(None, {"input": tensor})[0]
    assert float(np.abs(got - expected).max()) <= TOLERANCE
