"""Training on non-linear sources (``input_colorspace``, `plateforge train --input-colorspace`):
their R, G, B are decoded to the OCIO config's scene-linear on read, so a run on LogC4 sources
sees the frames a run on the linear ones sees; integer sources need a colour space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plateforge.errors import ColourError, UsageError
from plateforge.exr import read_exr, write_exr
from plateforge.frames import Frame
from plateforge.manifest_format import register
from plateforge_server.training import train
from plateforge_server.training.data import load_training_data
from tests.plateforge_server.training.helpers import fast, write_pairs

ocio = pytest.importorskip("PyOpenColorIO", reason="the review extra (opencolorio) is not installed")

LOGC4 = "ARRI LogC4"


def encode_dataset(linear: Path, folder: Path, transform: str) -> Path:
    """A copy of ``linear``'s dataset with every image encoded (``transform``: "logc4" or "uint32")."""
    processor = ocio.Config.CreateFromFile("ocio://studio-config-latest").getProcessor("ACEScg", LOGC4)
    for exr in sorted(linear.glob("*/img.*.exr")):
        frame = read_exr(exr)
        rgb = np.ascontiguousarray(frame.stack(["R", "G", "B"]), dtype=np.float32).copy()
        if transform == "logc4":
            processor.getDefaultCPUProcessor().applyRGB(rgb)
            channels = {c: rgb[..., i] for i, c in enumerate("RGB")}
        else:
            codes = np.round(np.clip(rgb.astype(np.float64), 0, 1) * (2**32 - 1)).astype(np.uint32)
            channels = {c: codes[..., i] for i, c in enumerate("RGB")}
        target = folder / exr.relative_to(linear)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_exr(target, Frame(channels, frame.data_window, frame.display_window))
    manifest = folder / "dataset.toml"
    manifest.write_text((linear / "dataset.toml").read_text(encoding="utf-8"), encoding="utf-8")
    register(manifest)
    return manifest


def test_log_sources_are_decoded_to_the_frames_of_linear_ones(tmp_path: Path) -> None:
    linear = write_pairs(tmp_path / "linear", frames=3, size=32)
    logc4 = encode_dataset(linear.parent, tmp_path / "logc4", "logc4")
    reference = load_training_data(fast(), linear)
    decoded = load_training_data(fast(input_colorspace=LOGC4), logc4)
    as_is = load_training_data(fast(), logc4)
    assert len(reference.frames) == len(decoded.frames) == 2
    for want, got, raw in zip(reference.frames, decoded.frames, as_is.frames, strict=True):
        np.testing.assert_allclose(got.image, want.image, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(got.target, want.target, rtol=2e-4, atol=2e-4)
        assert np.abs(raw.image - want.image).max() > 1e-2  # without it the net would learn on log values
    np.testing.assert_allclose(decoded.validation.inputs.numpy(), reference.validation.inputs.numpy(), atol=2e-4)


def test_integer_sources_need_a_colour_space(tmp_path: Path) -> None:
    linear = write_pairs(tmp_path / "linear", frames=2, size=32)
    coded = encode_dataset(linear.parent, tmp_path / "coded", "uint32")
    with pytest.raises(UsageError, match=r"integer code values \(uint32\).*--input-colorspace NAME"):
        load_training_data(fast(), coded)
    srgb = load_training_data(fast(input_colorspace="sRGB Encoded Rec.709 (sRGB)"), coded)
    assert srgb.frames[0].image.dtype == np.float32


def test_unknown_colour_space_is_refused_before_reading(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    with pytest.raises(ColourError, match="'LogC9' is not a colour space of the OpenColorIO config"):
        load_training_data(fast(input_colorspace="LogC9"), manifest)


def test_a_training_request_names_no_config_file_for_the_server_to_read() -> None:
    with pytest.raises(UsageError, match="ocio_config must be an OpenColorIO built-in"):
        fast(ocio_config="/etc/shadow")
    assert fast(ocio_config="ocio://studio-config-latest").ocio_config == "ocio://studio-config-latest"


def test_plateforge_train_input_colorspace_reaches_the_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI and a real Training service: the option becomes the job's config."""
    from plateforge.cli.main import main
    from tests.plateforge.cli.test_cli_train import FAST
    from tests.plateforge_server.jobs.test_jobs import TOKEN, training_server

    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    linear = write_pairs(tmp_path / "linear", frames=2, size=32)
    logc4 = encode_dataset(linear.parent, tmp_path / "logc4", "logc4")
    with training_server(tmp_path / "jobs") as server:
        common = ["--server", server.address, "--token", TOKEN, "--tool", "look", "--steps", "2", *FAST]
        code = main(["train", "--dataset", str(logc4), "--input-colorspace", LOGC4, "--name", "log-look", *common])
        out, err = capsys.readouterr()
        assert code == 0, err
        card = json.loads((Path(out.strip().splitlines()[-1]) / "card.json").read_text())
        assert card["training"]["input_colorspace"] == LOGC4
        code = main(["train", "--dataset", str(logc4), "--input-colorspace", "LogC9", "--name", "bad", *common])
        _, err = capsys.readouterr()
        assert code != 0 and "'LogC9' is not a colour space" in err


def test_the_card_records_the_colour_space(tmp_path: Path) -> None:
    linear = write_pairs(tmp_path / "linear", frames=2, size=32)
    logc4 = encode_dataset(linear.parent, tmp_path / "logc4", "logc4")
    result = train(fast(steps=2, input_colorspace=LOGC4), manifest_path=logc4, out_dir=tmp_path / "run")
    card = json.loads((Path(result.model_dir) / "card.json").read_text())
    assert card["training"]["input_colorspace"] == LOGC4 and card["training"]["ocio_config"] == ""
