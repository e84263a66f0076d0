"""`plateforge provenance` as users run it: on an EXR from a real server, on saved models, and on
files that are neither."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import sha256_file, write_exr
from plateforge.frames import Box, Frame


def plateforge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, without any PLATEFORGE_* settings of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    command = [sys.executable, "-m", "plateforge.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(plate, result): one frame through `plateforge process --model passthrough` and its own server."""
    folder = tmp_path_factory.mktemp("processed")
    plate = folder / "plate.1001.exr"
    pixels = np.arange(24, dtype=np.float32).reshape(4, 6) / 24
    write_exr(
        plate,
        Frame(
            channels={"R": pixels, "G": pixels, "B": pixels},
            data_window=Box(0, 0, 5, 3),
            display_window=Box(0, 0, 5, 3),
        ),
    )
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(folder / "plate.####.exr"),
        "--frames", "1001", "--output", str(folder / "out.####.exr"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return plate, folder / "out.1001.exr"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder saved by the server's save_model from a tiny state dict."""
    torch = pytest.importorskip("torch")
    from plateforge_server.modelcard import BaseModel, ModelCard, NetSpec, SourceRecord, save_model

    folder = tmp_path_factory.mktemp("models") / "sh010-cleanup"
    card = ModelCard(
        name="sh010-cleanup",
        version="4",
        tool="cleanup",
        net=NetSpec("conv", {"width": 4}),
        sources=(
            SourceRecord("plates/sh010.1001.exr", "a" * 64, "LicenseRef-acme-sow-17", "ACME Pictures"),
            SourceRecord("fixes/sh010_fix.1001.exr", "b" * 64, "CC-BY-4.0", "Jo Artist"),
        ),
        base_model=BaseModel("inpaint-base", "CC-BY-4.0", "c" * 64),
        training={"steps": 200, "crop": 64},
        metrics={"psnr": 33.5},
    )
    save_model(folder, tensors={"conv.weight": torch.ones(4, 3, 3, 3), "conv.bias": torch.zeros(4)}, card=card)
    return folder


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result
    stderr = result.stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("plateforge provenance: error: "), stderr
    for name in names:
        assert name in stderr, stderr


# -- EXR ------------------------------------------------------------------------------------------


def test_exr_from_a_real_server(processed: tuple[Path, Path]) -> None:
    plate, out = processed
    result = plateforge("provenance", str(out))
    assert result.returncode == 0, result.stderr
    assert f"{out}: made by plateforge" in result.stdout
    assert "model                 passthrough" in result.stdout
    assert "model reference       passthrough@1" in result.stdout  # pasted back into process --model
    assert "device                cpu" in result.stdout and "precision             fp32" in result.stdout
    assert f"source file           {plate}" in result.stdout
    assert f"source sha256         {sha256_file(plate)}" in result.stdout
    assert "frame                 1001" in result.stdout

    result = plateforge("provenance", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)[str(out)]
    assert report["kind"] == "exr" and len(report["parts"]) == 1
    record = report["parts"][0]["provenance"]
    assert record["model"] == "passthrough" and record["tool"] == "passthrough" and record["modelVersion"] == "1"
    assert record["params"] == {} and record["frame"] == 1001  # JSON values decoded
    assert record["sourceFile"] == str(plate) and record["sourceFileSha256"] == sha256_file(plate)
    assert re.fullmatch(r"xxh3-128:[0-9a-f]{32}", record["sourcePixelsDigest"]) and len(record["modelHash"]) == 64
    assert record["server"].startswith("plateforge ") and record["schema"] == "1"


def test_exr_without_provenance_exits_1(processed: tuple[Path, Path]) -> None:
    plate, _ = processed
    result = plateforge("provenance", str(plate))
    assert result.returncode == 1 and "no plateforge provenance" in result.stdout


def test_exr_with_unknown_provenance_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.exr"
    frame = Frame(
        channels={"Y": np.zeros((2, 2), np.float32)}, data_window=Box(0, 0, 1, 1), display_window=Box(0, 0, 1, 1)
    )
    write_exr(path, frame, attributes={"plateforge/schema": "9", "plateforge/model": "x"})
    assert_one_clear_line(plateforge("provenance", str(path)), str(path), "unknown schema '9'", "'1'")


def test_damaged_exr_is_one_clear_line(processed: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = processed
    cut = tmp_path / "cut.exr"
    cut.write_bytes(out.read_bytes()[:40])
    assert_one_clear_line(plateforge("provenance", str(cut)), "cut.exr")


# -- models ---------------------------------------------------------------------------------------


def test_model_folder(model: Path) -> None:
    result = plateforge("provenance", str(model))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model sh010-cleanup@4 (tool cleanup), card plateforge.modelcard/1" in out
    assert "(matches card.json)" in out
    assert "plates/sh010.1001.exr  licence LicenseRef-acme-sow-17  rights holder ACME Pictures" in out
    assert "base model            inpaint-base, licence CC-BY-4.0" in out
    assert "training              steps = 200" in out and "metrics               psnr = 33.5" in out

    result = plateforge("provenance", "--json", str(model / "model.safetensors"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)[str(model / "model.safetensors")]
    assert report["kind"] == "model" and report["verified"] is True
    assert report["weights_sha256"] == sha256_file(model / "model.safetensors") == report["card"]["weights_sha256"]
    assert [s["licence"] for s in report["card"]["sources"]] == ["LicenseRef-acme-sow-17", "CC-BY-4.0"]
    assert report["card"]["training"] == {"steps": 200, "crop": 64}


def test_weights_copied_without_their_card(model: Path, tmp_path: Path) -> None:
    alone = tmp_path / "copied.safetensors"
    shutil.copy(model / "model.safetensors", alone)
    result = plateforge("provenance", "--json", str(alone))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)[str(alone)]
    assert report["verified"] is False and report["card_file"] is None
    assert report["weights_sha256"] == sha256_file(alone) and report["card"]["weights_sha256"] is None
    assert "not checked" in plateforge("provenance", str(alone)).stdout


def test_tampered_weights_are_one_clear_line(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(model, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(data))
    assert_one_clear_line(plateforge("provenance", str(copy)), str(copy / "model.safetensors"), "changed")


def test_unknown_card_schema_is_refused_with_the_known_list(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(model, copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps({**card, "schema": "plateforge.modelcard/5"}))
    assert_one_clear_line(
        plateforge("provenance", str(copy)), "'plateforge.modelcard/5'", "knows plateforge.modelcard/1"
    )


# -- neither --------------------------------------------------------------------------------------


def test_truncated_and_damaged_safetensors(model: Path, tmp_path: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    cases = {
        "truncated.safetensors": data[: len(data) // 2],
        "header-only.safetensors": data[:20],
        "huge-length.safetensors": struct.pack("<Q", 2**40) + data[8:],
        "garbage.safetensors": b"\x00" * 64,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert_one_clear_line(plateforge("provenance", str(tmp_path / name)), name, "not a readable safetensors file")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("notes.txt", b"not an image, not a model\n", id="text-file"),
        pytest.param("empty.exr", b"", id="empty-file"),
        pytest.param("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, id="other-image"),
    ],
)
def test_neither_exr_nor_model_exits_2(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    assert_one_clear_line(plateforge("provenance", str(tmp_path / name)), name, "neither an EXR file nor")


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    assert_one_clear_line(plateforge("provenance", str(tmp_path / "nope.exr")), "nope.exr", "does not exist")
    assert_one_clear_line(plateforge("provenance", str(tmp_path)), "card.json", "does not exist")


def test_help_is_the_docstring() -> None:
    result = plateforge("provenance", "--help")
    assert result.returncode == 0 and "lineage" in result.stdout and "Exit status" in result.stdout
    assert "provenance" in plateforge("--help").stdout
