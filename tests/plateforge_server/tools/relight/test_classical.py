"""relight-classical: the fit on its own, then the tool on a real server and from the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import PlateforgeError
from plateforge.exr import read_exr
from plateforge.frames import Box, Frame
from plateforge.metrics import psnr
from plateforge.shots.relit import AOV_CHANNELS, RelitShot, make_relit_shot, write_relit_shot
from plateforge_server.tools.relight.classical import INFO, MAX_KEYS, fit_transform
from tests.conftest import ServerProcess
from tests.plateforge.cli.test_cli import plateforge, server_env

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def shot() -> RelitShot:
    return make_relit_shot(width=96, height=64, frames=5, seed=1)


def _keys(shot: RelitShot, indices: list[int], kind: str = "looks") -> dict[str, Frame]:
    targets = getattr(shot, kind)
    inputs: dict[str, Frame] = {}
    for k, index in enumerate(indices, start=1):
        inputs[f"key_before_{k}"] = shot.plates[index]
        inputs[f"key_after_{k}"] = targets[index]
    return inputs


# -- the fit -------------------------------------------------------------------------------------


def test_affine_fit_recovers_a_colour_matrix_exactly() -> None:
    rng = np.random.default_rng(0)
    before = rng.uniform(0.0, 2.0, (32, 32, 3))
    matrix = np.array([[1.2, 0.1, -0.05, 0.01], [0.0, 0.9, 0.1, 0.0], [0.05, -0.1, 0.8, -0.02]])
    after = before @ matrix[:, :3].T + matrix[:, 3]
    fitted = fit_transform([before], [after])
    np.testing.assert_allclose(fitted.affine, matrix, atol=1e-5)
    np.testing.assert_allclose(fitted.apply(before), after, atol=1e-4)


def test_lut_captures_a_curve_the_affine_cannot(shot: RelitShot) -> None:
    befores = [shot.plates[k].stack(RGB) for k in (0, 4)]
    afters = [shot.looks[k].stack(RGB) for k in (0, 4)]
    affine = fit_transform(befores, afters)
    lut = fit_transform(befores, afters, lut_size=17)
    plate, truth = shot.plates[2].stack(RGB), shot.looks[2].stack(RGB)
    assert psnr(lut.apply(plate), truth) > psnr(affine.apply(plate), truth) + 3
    assert psnr(affine.apply(plate), truth) > psnr(plate, truth) + 5


def test_a_flat_key_gives_a_finite_transform() -> None:
    flat = np.full((8, 8, 3), 0.5)
    fitted = fit_transform([flat], [flat * 1.5], lut_size=5)
    assert np.isfinite(fitted.affine).all()
    np.testing.assert_allclose(fitted.apply(flat), flat * 1.5, atol=1e-3)


def test_declares_eight_optional_key_pairs_after_the_first() -> None:
    names = [spec.name for spec in INFO.inputs]
    assert names[:3] == ["plate", "key_before_1", "key_after_1"]
    assert len(names) == 1 + 2 * MAX_KEYS
    assert [spec.required for spec in INFO.inputs[:3]] == [True, True, True]
    assert not any(spec.required for spec in INFO.inputs[3:])


# -- on a real server ----------------------------------------------------------------------------


def test_served_look_transfer_from_two_keys_passes_other_channels_through(client: Client, shot: RelitShot) -> None:
    plate = shot.plates[2]
    result = client.process("relight-classical", {"plate": plate, **_keys(shot, [0, 4])})
    out = result.outputs["image"]
    assert psnr(out.stack(RGB), shot.looks[2].stack(RGB)) > psnr(plate.stack(RGB), shot.looks[2].stack(RGB)) + 5
    for name in ("A", "Z", *AOV_CHANNELS):
        assert out.channels[name].tobytes() == plate.channels[name].tobytes(), name
    assert all(out.channels[c].dtype == np.float16 for c in RGB)
    assert result.provenance["plateforge/model"].startswith("relight-classical")

    lut = client.process(
        "relight-classical", {"plate": plate, **_keys(shot, [0, 4])}, params={"method": "affine+lut", "lut_size": 9}
    ).outputs["image"]
    assert psnr(lut.stack(RGB), shot.looks[2].stack(RGB)) > psnr(out.stack(RGB), shot.looks[2].stack(RGB))


def test_served_relight_is_better_than_nothing_but_global(client: Client, shot: RelitShot) -> None:
    out = client.process("relight-classical", {"plate": shot.plates[2], **_keys(shot, [1, 3], "relits")})
    truth, plate = shot.relits[2].stack(RGB), shot.plates[2].stack(RGB)
    assert psnr(out.outputs["image"].stack(RGB), truth) > psnr(plate, truth)


def test_refuses_a_key_of_another_size(client: Client, shot: RelitShot) -> None:
    small = make_relit_shot(width=64, height=48, frames=1, seed=1)
    inputs = {"plate": shot.plates[2], **_keys(shot, [0])}
    inputs["key_before_2"], inputs["key_after_2"] = small.plates[0], small.looks[0]
    with pytest.raises(PlateforgeError, match=r"key_before_2.*data window .*every input must share the plate"):
        client.process("relight-classical", inputs)


def test_refuses_an_unchanged_key_naming_it(client: Client, shot: RelitShot) -> None:
    inputs = {"plate": shot.plates[2], **_keys(shot, [0, 4])}
    inputs["key_after_2"] = shot.plates[4]
    with pytest.raises(
        PlateforgeError, match=r"keyframe pair 2 is unchanged: 'key_after_2'.*identical to 'key_before_2'"
    ):
        client.process("relight-classical", inputs)


def test_refuses_half_a_pair(client: Client, shot: RelitShot) -> None:
    inputs = {"plate": shot.plates[2], **_keys(shot, [0])}
    inputs["key_after_3"] = shot.looks[4]
    with pytest.raises(PlateforgeError, match=r"keyframe pair 3 has 'key_after_3' but no 'key_before_3'"):
        client.process("relight-classical", inputs)


def test_refuses_a_plate_without_rgb(client: Client, shot: RelitShot) -> None:
    window = Box.from_size(96, 64)
    depth_only = Frame({"Z": np.ones((64, 96), np.float32)}, window, window, frame_number=1003)
    with pytest.raises(PlateforgeError, match=r"lacks channel\(s\) \['R', 'G', 'B'\]"):
        client.process("relight-classical", {"plate": depth_only, **_keys(shot, [0])})


def test_cli_carries_a_grade_over_a_frame_range(tmp_path: Path, server: ServerProcess) -> None:
    small = make_relit_shot(width=64, height=48, frames=4, seed=3)
    write_relit_shot(small, tmp_path)
    result = plateforge(
        "process",
        "--model", "relight-classical",
        "--input", str(tmp_path / "plate.####.exr"),
        "--in", f"key_before_1={tmp_path / 'plate.1001.exr'}",
        "--in", f"key_after_1={tmp_path / 'look.1001.exr'}",
        "--in", f"key_before_2={tmp_path / 'plate.1004.exr'}",
        "--in", f"key_after_2={tmp_path / 'look.1004.exr'}",
        "--frames", "1002-1003",
        "--output", str(tmp_path / "out.####.exr"),
        env=server_env(server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for number, index in ((1002, 1), (1003, 2)):
        out = read_exr(tmp_path / f"out.{number}.exr")
        truth, plate = small.looks[index].stack(RGB), small.plates[index].stack(RGB)
        assert psnr(out.stack(RGB), truth) > psnr(plate, truth) + 5
        assert out.channels["N.x"].tobytes() == small.plates[index].channels["N.x"].tobytes()
