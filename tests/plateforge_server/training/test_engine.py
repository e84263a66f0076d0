from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from plateforge.exr import read_exr
from plateforge_server.inference.tiling import run_on_frame_arrays
from plateforge_server.modelcard import load_weights, verify_model
from plateforge_server.nets.unet import UNet, UNetConfig, decode, encode
from plateforge_server.training import TrainProgress, load_checkpoint, net_config_for, train
from plateforge_server.training.pictures import LOSS_PIXELS
from tests.plateforge_server.training.helpers import fast, write_pairs, write_shot_dataset


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height of a valid 8-bit RGB PNG (checks the signature, IHDR and the IDAT data)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 2)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    raw = zlib.decompress(data[start : start + length])
    assert len(raw) == height * (1 + 3 * width)
    return width, height


def test_learns_a_colour_change(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=3, size=64)
    config = fast(steps=150, batch=4, lr=2e-3, warmup=10, preview_every=50, validation_every=50, checkpoint_every=50)
    reports: list[TrainProgress] = []
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run", progress=reports.append)

    first, last = float(np.mean(result.losses[:10])), float(np.mean(result.losses[-10:]))
    print(f"loss {first:.4f} -> {last:.4f}; val PSNR {result.identity_psnr:.2f} -> {result.val_psnr:.2f} dB")
    assert last < 0.4 * first
    assert result.val_psnr > result.identity_psnr + 3.0
    assert [r.step for r in reports] == list(range(1, 151))
    assert reports[-1].val_psnr == result.val_psnr and reports[-1].eta_seconds == 0.0

    card = verify_model(result.model_dir)
    assert card.tool == "look"
    assert [i.name for i in card.inputs] == ["plate"] and card.inputs[0].channels == ("R", "G", "B")
    assert [o.name for o in card.outputs] == ["image"]
    net_config = UNetConfig.from_dict(card.net.config)
    assert net_config == net_config_for(config) and card.padding == net_config.receptive_field
    assert {s.path for s in card.sources} == {f"{d}/img.{n}.exr" for d in ("in", "out") for n in (1001, 1002, 1003)}
    assert all(len(s.sha256) == 64 and s.licence == "CC-BY-4.0" for s in card.sources)
    assert card.training["steps"] == 150 and card.training["schema"] == "plateforge.trainconfig/1"
    assert all(math.isfinite(v) for v in card.metrics.values() if isinstance(v, float))

    # The exported model, through tiled inference, gives what the net it publishes gives in one
    # pass: the checkpoint that validated best (server/plateforge_server/training/selection.py), the last one when
    # the last step is that best.
    exported = UNet(net_config)
    exported.load_state_dict(load_weights(result.model_dir))
    exported.eval()
    trained = UNet(net_config)
    selected = card.metrics["selected_step"]
    assert isinstance(selected, int) and 0 < selected <= 150  # a colour change is learned: never step 0
    last = load_checkpoint(result.checkpoint)
    best = last if selected == last.step else load_checkpoint(next((tmp_path / "run" / "best").glob("*.safetensors")))
    assert best.step == selected
    trained.load_state_dict(best.model)
    trained.eval()
    planes = read_exr(tmp_path / "data" / "in" / "img.1003.exr").stack(["R", "G", "B"])
    tiled = run_on_frame_arrays(exported, planes)
    with torch.no_grad():
        direct = decode(trained(encode(torch.from_numpy(planes).permute(2, 0, 1)[None])))[0].permute(1, 2, 0).numpy()
    assert np.abs(tiled - direct).max() <= 1e-5

    assert _png_size(tmp_path / "run" / "preview.png")[0] > 4 * 64  # input | classical | learned | target
    assert _png_size(tmp_path / "run" / "loss.png") == LOSS_PIXELS


def test_inpaint_on_a_synthetic_shot(tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")
    config = fast(mode="inpaint", steps=6, preview_every=3, validation_every=3)
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    assert result.steps == 6 and math.isfinite(result.final_loss) and math.isfinite(result.val_psnr)

    card = verify_model(result.model_dir)
    assert card.tool == "cleanup"
    assert [i.name for i in card.inputs] == ["plate", "mask"]
    assert UNetConfig.from_dict(card.net.config).in_channels == 4
    assert {s.path for s in card.sources} == {f"{k}.{n}.exr" for k in ("plate", "mask") for n in range(1001, 1005)}

    net = UNet(UNetConfig.from_dict(card.net.config))
    net.load_state_dict(load_weights(result.model_dir))
    net.eval()
    plate = read_exr(tmp_path / "shot" / "plate.1001.exr").stack(["R", "G", "B"])
    mask = read_exr(tmp_path / "shot" / "mask.1001.exr").stack(["A"])
    filled = run_on_frame_arrays(net, np.concatenate([plate * (1 - mask), mask], axis=2))
    assert filled.shape == (64, 96, 3) and np.isfinite(filled).all()

    assert _png_size(tmp_path / "run" / "preview.png")[1] > 64
    assert _png_size(tmp_path / "run" / "loss.png") == LOSS_PIXELS
