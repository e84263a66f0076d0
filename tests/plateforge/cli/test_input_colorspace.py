"""`plateforge process --input-colorspace`: non-linear plates go to the model in the OCIO config's
scene-linear space and come back in their own encoding; integer plates need a colour space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import read_exr, write_exr
from plateforge.frames import Box, Frame
from plateforge.provenance import from_attributes
from plateforge.shots.synthetic import make_shot
from tests.conftest import ServerProcess
from tests.plateforge.cli.test_cli import plateforge, server_env

ocio = pytest.importorskip("PyOpenColorIO", reason="the review extra (opencolorio) is not installed")

CONFIG = "ocio://studio-config-latest"
SRGB = "sRGB Encoded Rec.709 (sRGB)"
LOGC4 = "ARRI LogC4"


def convert(rgb: np.ndarray, source: str, destination: str) -> np.ndarray:
    """OCIO's own conversion, as the test's reference."""
    out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    ocio.Config.CreateFromFile(CONFIG).getProcessor(source, destination).getDefaultCPUProcessor().applyRGB(out)
    return out


def rgb_of(frame: Frame) -> np.ndarray:
    return frame.stack(["R", "G", "B"])


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Frame], list[Frame]]:
    """(folder, linear plates, masks): a synthetic shot's scene-linear (ACEScg) plates, written
    as they are (linear/) and encoded in sRGB and ARRI LogC4 as float32 EXRs (srgb/, logc4/)."""
    folder = tmp_path_factory.mktemp("colour")
    made = make_shot(frames=3, width=64, height=40, seed=101)
    for sub in ("linear", "mask", "srgb", "logc4"):
        (folder / sub).mkdir()
    plates = [p.replace(channels={c: v.astype(np.float32) for c, v in p.channels.items()}) for p in made.plates]
    for index, number in enumerate(made.frame_numbers):
        plate = plates[index]
        write_exr(folder / "linear" / f"plate.{number:04d}.exr", plate)
        write_exr(folder / "mask" / f"mask.{number:04d}.exr", made.masks[index])
        for space, sub in ((SRGB, "srgb"), (LOGC4, "logc4")):
            encoded = convert(rgb_of(plate), "ACEScg", space)
            channels = {**plate.channels, **{c: encoded[..., i] for i, c in enumerate("RGB")}}
            write_exr(folder / sub / f"plate.{number:04d}.exr", plate.replace(channels=channels))
    return folder, plates, list(made.masks)


@pytest.mark.parametrize(
    ("space", "sub"), [pytest.param(SRGB, "srgb", id="srgb"), pytest.param(LOGC4, "logc4", id="logc4")]
)
def test_round_trip_through_the_model_gives_the_plate_back(
    shot: tuple[Path, list[Frame], list[Frame]], server: ServerProcess, space: str, sub: str
) -> None:
    folder, plates, _ = shot
    out = folder / f"out-{sub}"
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(folder / sub / "plate.####.exr"), "--frames", "1001-1003",
        "--output", str(out / "out.####.exr"), "--input-colorspace", space, env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for index, number in enumerate((1001, 1002, 1003)):
        given = read_exr(folder / sub / f"plate.{number:04d}.exr")
        made = read_exr(out / f"out.{number:04d}.exr")
        # Back in the plate's encoding, equal to it within float32 arithmetic.
        np.testing.assert_allclose(rgb_of(made), rgb_of(given), rtol=2e-5, atol=2e-5)
        np.testing.assert_array_equal(made.channels["A"], given.channels["A"])  # not colour: untouched
        np.testing.assert_array_equal(made.channels["Z"], given.channels["Z"])
        # Decoded again, the linear plate: two more trips through OCIO's SIMD pow/log (good to
        # about 1e-4 relative) than the check above.
        linear = convert(rgb_of(made), space, "ACEScg")
        np.testing.assert_allclose(linear, rgb_of(plates[index]), rtol=2e-4, atol=2e-5)
        record = from_attributes(made.attributes)
        assert record["inputColorspace"] == space
        assert record["sceneLinear"] == "ACEScg" and record["ocioConfig"] == CONFIG


def test_the_model_works_in_scene_linear_light(
    shot: tuple[Path, list[Frame], list[Frame]], server: ServerProcess
) -> None:
    """cleanup-classical on LogC4 plates with --input-colorspace makes, once decoded, the frames it
    makes from the linear plates; without the option it works on log values and does not."""
    folder, _, _ = shot
    common = ["--model", "cleanup-classical", "--mask", str(folder / "mask" / "mask.####.exr"), "--frames", "1002"]
    runs = {
        "linear": ["--input", str(folder / "linear" / "plate.####.exr")],
        "decoded": ["--input", str(folder / "logc4" / "plate.####.exr"), "--input-colorspace", LOGC4],
        "as-is": ["--input", str(folder / "logc4" / "plate.####.exr")],
    }
    made = {}
    for name, args in runs.items():
        target = folder / f"cleanup-{name}" / "out.####.exr"
        result = plateforge("process", *common, *args, "--output", str(target), env=server_env(server))
        assert result.returncode == 0, result.stderr
        made[name] = rgb_of(read_exr(str(target).replace("####", "1002")))
    decoded = convert(made["decoded"], LOGC4, "ACEScg")
    np.testing.assert_allclose(decoded, made["linear"], rtol=1e-4, atol=1e-4)
    as_is = convert(made["as-is"], LOGC4, "ACEScg")
    assert np.abs(as_is - made["linear"]).max() > 1e-2  # the option changes what the model does


def test_skip_existing_redoes_frames_made_from_another_encoding(
    shot: tuple[Path, list[Frame], list[Frame]], server: ServerProcess
) -> None:
    folder, _, _ = shot
    args = [
        "process", "--model", "passthrough", "--input", str(folder / "srgb" / "plate.####.exr"), "--frames", "1001",
        "--output", str(folder / "skip" / "out.####.exr"), "--skip-existing", "--summary", "-",
    ]  # fmt: skip
    first = plateforge(*args, "--input-colorspace", SRGB, env=server_env(server))
    again = plateforge(*args, "--input-colorspace", SRGB, env=server_env(server))
    other = plateforge(*args, env=server_env(server))
    assert first.returncode == again.returncode == other.returncode == 0, (first.stderr, again.stderr, other.stderr)
    assert json.loads(again.stdout)["skipped"] == [1001]
    assert json.loads(other.stdout)["redone"] == [1001]


def integer_plate(folder: Path) -> Path:
    codes = (np.arange(40 * 64, dtype=np.uint64).reshape(40, 64) * 1_000_003 % 2**32).astype(np.uint32)
    frame = Frame(
        {"R": codes, "G": codes[::-1].copy(), "B": codes[:, ::-1].copy()}, Box(0, 0, 63, 39), Box(0, 0, 63, 39)
    )
    path = folder / "plate.1001.exr"
    write_exr(path, frame)
    return path


def test_integer_plates_are_refused_without_a_colour_space(tmp_path: Path, server: ServerProcess) -> None:
    plate = integer_plate(tmp_path)
    out = tmp_path / "out.####.exr"
    args = ["process", "--model", "passthrough", "--input", str(tmp_path / "plate.####.exr"), "--frames", "1001"]
    result = plateforge(*args, "--output", str(out), env=server_env(server))
    assert result.returncode == 2
    assert "integer code values (uint32)" in result.stderr and "--input-colorspace NAME" in result.stderr
    assert not (tmp_path / "out.1001.exr").exists()
    # With the plate's colour space the code values are decoded (full range -> 0..1) and sent as light.
    result = plateforge(*args, "--output", str(out), "--input-colorspace", SRGB, env=server_env(server))
    assert result.returncode == 0, result.stderr
    made = read_exr(tmp_path / "out.1001.exr")
    codes = read_exr(plate).stack(["R", "G", "B"], dtype=np.float64) / (2**32 - 1)
    np.testing.assert_allclose(rgb_of(made), codes, rtol=1e-4, atol=2e-5)


def test_unknown_colour_space_is_refused_before_any_frame(
    shot: tuple[Path, list[Frame], list[Frame]], server: ServerProcess, tmp_path: Path
) -> None:
    folder, _, _ = shot
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(folder / "srgb" / "plate.####.exr"), "--frames", "1001",
        "--output", str(tmp_path / "out.####.exr"), "--input-colorspace", "Rec.709-ish", env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--input-colorspace 'Rec.709-ish' is not a colour space" in result.stderr and LOGC4 in result.stderr
    assert not list(tmp_path.iterdir())
