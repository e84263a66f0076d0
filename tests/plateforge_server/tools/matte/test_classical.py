"""matte-classical on the synthetic matte dailies, directly and through a real server and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import PlateforgeError
from plateforge.exr import read_exr
from plateforge.frames import Box, Frame
from plateforge.models import resolve_params
from plateforge.shots.dailies import MatteShot, make_matte_shot, write_matte_shot
from plateforge_server.tools.base import ToolCall
from plateforge_server.tools.matte import classical as matte_classical
from plateforge_server.tools.matte.evaluation import sad
from tests.conftest import ServerProcess

RGB = ("R", "G", "B")
INFO = matte_classical.INFO
#: Measured on the 160x96 shot of seed 1 (grain 0.01), mean over its 4 frames: the difference key
#: scores a SAD of about 0.084 (thousands of pixels); an all-zero matte scores 1.38. The bar sits above.
MAX_SAD = 0.2


@pytest.fixture(scope="module")
def shot() -> MatteShot:
    return make_matte_shot(width=160, height=96, frames=4, seed=1)


def call_for(shot: MatteShot, index: int, *, background: bool = True, **params: object) -> ToolCall:
    inputs = {"plate": [shot.plates[index]], "clean_plate": [shot.cleans[index]]}
    if background:
        inputs["background"] = [shot.backgrounds[index]]
    return ToolCall(info=INFO, inputs=inputs, params=resolve_params(INFO, params), target_frame=None)


def test_key_is_close_to_the_truth_and_the_outputs_are_consistent(shot: MatteShot) -> None:
    state = matte_classical.load(device="cpu")
    scores = []
    for i in range(len(shot)):
        outputs = matte_classical.run(state, call_for(shot, i))
        assert set(outputs) == {"alpha", "foreground", "composite"}
        alpha = outputs["alpha"].channels["A"]
        assert alpha.dtype == np.float32 and alpha.min() >= 0.0 and alpha.max() <= 1.0
        scores.append(sad(alpha, shot.alpha(i)))
        fg = outputs["foreground"].stack(RGB)
        assert np.array_equal(outputs["foreground"].channels["A"], alpha)
        # Where the key says background the foreground is only the subject's shadow and bounce on
        # the set; this shot has none, so grain is all there is, and the garrote zeroes it.
        outside = alpha == 0
        layer = matte_classical.set_light(shot.plates[i].stack(RGB), shot.cleans[i].stack(RGB), outside)
        assert np.array_equal(fg[outside], layer[outside].astype(np.float16).astype(np.float32))
        # (Near the subject it may carry faint hair or blur the key missed: light that is the subject's.)
        far = cv2.dilate((shot.alpha(i) > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        assert np.mean(fg[outside & far] == 0) > 0.99, "grain passed for shadow or bounce"
        over = outputs["composite"].stack(RGB)
        expected = fg + (1 - alpha)[:, :, None] * shot.backgrounds[i].stack(RGB)
        assert np.allclose(over, expected, rtol=2e-3, atol=2e-3)  # half output, like the background
        assert np.all(outputs["composite"].channels["A"] == 1.0)  # over an opaque background
    assert float(np.mean(scores)) < MAX_SAD
    assert float(np.mean([sad(np.zeros_like(shot.alpha(i)), shot.alpha(i)) for i in range(len(shot))])) > 5 * MAX_SAD


def test_subject_on_the_frame_edge_is_keyed_to_the_edge(shot: MatteShot) -> None:
    assert shot.crosses_side
    state = matte_classical.load(device="cpu")
    for i in range(len(shot)):
        truth = shot.alpha(i)
        alpha = matte_classical.run(state, call_for(shot, i))["alpha"].channels["A"]
        for got, want in ((alpha[:, 0], truth[:, 0]), (alpha[:, -1], truth[:, -1]), (alpha[-1], truth[-1])):
            if want.max() >= 1.0:  # the subject is cut by this edge: the key holds it to the last pixel
                assert np.mean(np.abs(got - want)) < 0.1


def test_other_channels_pass_through_and_no_background_no_composite(shot: MatteShot) -> None:
    plate = shot.plates[0]
    depth = np.arange(plate.width * plate.height, dtype=np.float32).reshape(plate.height, plate.width)
    with_z = plate.replace(channels={**plate.channels, "Z": depth})
    call = ToolCall(
        info=INFO,
        inputs={"plate": [with_z], "clean_plate": [shot.cleans[0]]},
        params=resolve_params(INFO, {}),
        target_frame=None,
    )
    outputs = matte_classical.run(matte_classical.load(device="cpu"), call)
    assert set(outputs) == {"alpha", "foreground"}
    assert outputs["foreground"].channels["Z"] is depth
    assert outputs["foreground"].channels["R"].dtype == np.float16  # the plate's pixel type


def test_parameters_change_the_key(shot: MatteShot) -> None:
    state = matte_classical.load(device="cpu")
    loose = matte_classical.run(state, call_for(shot, 1, threshold=0.0, despeckle=0))["alpha"].channels["A"]
    tight = matte_classical.run(state, call_for(shot, 1, threshold=2.0))["alpha"].channels["A"]
    assert loose.sum() > tight.sum()


def test_served_by_a_real_server(client: Client, shot: MatteShot) -> None:
    info = {m.name: m for m in client.list_models()}["matte-classical"]
    assert [i.name for i in info.inputs] == ["plate", "clean_plate", "background"]
    assert [o.name for o in info.outputs] == ["alpha", "foreground", "composite"]
    result = client.process(
        "matte-classical",
        {"plate": shot.plates[2], "clean_plate": shot.cleans[2], "background": shot.backgrounds[2]},
    )
    local = matte_classical.run(matte_classical.load(device="cpu"), call_for(shot, 2))
    assert np.array_equal(result.outputs["alpha"].channels["A"], local["alpha"].channels["A"])
    assert set(result.outputs) == {"alpha", "foreground", "composite"}
    assert result.provenance["plateforge/model"] == "matte-classical"


#: Pixels whose set light (shadow, bounce) is at least this strong count as the subject's shadow.
SHADOW_LEVEL = 0.03


@pytest.fixture(scope="module")
def shadowed() -> MatteShot:
    """A grain-free shot whose subject casts a shadow and bounce light on the set."""
    return make_matte_shot(width=160, height=96, frames=2, seed=2, grain=0.0, shadow=0.5, bounce=0.15)


def test_the_subjects_shadow_and_bounce_survive_into_the_composite(shadowed: MatteShot) -> None:
    """Given the exact alpha, the delivered composite over a new background is the exact one:
    the shadow and bounce the subject casts on the set land on the new set (issue 16: the
    foreground clamped to [0, plate] threw them away)."""
    for i in range(len(shadowed)):
        alpha = shadowed.alpha(i)
        call = call_for(shadowed, i)
        outputs = matte_classical.matte_outputs(call, alpha)
        over = outputs["composite"].stack(RGB)
        exact = shadowed.composite(i)
        light = shadowed.set_light[i]
        cast = (light.sum(axis=2) < -SHADOW_LEVEL) & (alpha == 0)
        lit = (light.sum(axis=2) > SHADOW_LEVEL) & (alpha == 0)
        assert cast.sum() > 150 and lit.sum() > 150, "the fixture must have a shadow and a bounce"
        background = shadowed.backgrounds[i].stack(RGB)
        assert np.abs(exact - background)[cast].mean() > 0.05  # dropping the shadow would be far off
        # Half plates in, half composite out: a few 1e-3 of rounding, nothing more, everywhere.
        assert np.abs(over - exact).max() < 4e-3 + 2e-3 * np.abs(exact).max()
        assert np.abs(over - exact)[cast | lit].max() < 3e-3
        fg = outputs["foreground"].stack(RGB)
        assert fg[cast].max() < 0 and np.all(np.isfinite(fg))  # the shadow is negative light


def test_grain_stays_out_of_the_composite_and_the_shadow_stays_in() -> None:
    shot = make_matte_shot(width=160, height=96, frames=1, seed=2, grain=0.01, shadow=0.5, bounce=0.15)
    alpha = shot.alpha(0)
    plate, clean, background = (f.stack(RGB) for f in (shot.plates[0], shot.cleans[0], shot.backgrounds[0]))
    over = matte_classical.composite_over(matte_classical.solve_foreground(plate, clean, alpha), alpha, background)
    exact = shot.composite(0)
    light = np.abs(shot.set_light[0]).sum(axis=2)
    strong, none = (light > 0.1) & (alpha == 0), (light < 1e-4) & (alpha == 0)
    assert strong.sum() > 300 and none.sum() > 1000
    # Where the subject changed nothing the new background comes through untouched (grain zeroed) ...
    assert np.mean(over[none] == background[none]) > 0.99
    # ... and its shadow and bounce land as the plain unmix puts them (within the two plates' grain,
    # which the garrote barely shrinks there), far closer than dropping them would be.
    unmixed = plate - (1 - alpha)[:, :, None] * (clean - background)
    error = np.abs(over - exact)[strong].mean()
    assert error < 1.1 * np.abs(unmixed - exact)[strong].mean()
    assert error < 0.3 * np.abs(shot.set_light[0])[strong].mean()
    assert np.abs(over - exact)[none].mean() < 0.2 * np.abs(unmixed - exact)[none].mean()


def test_non_finite_plates_give_a_finite_foreground() -> None:
    plate = np.full((8, 8, 3), 0.5, np.float32)
    clean = np.full((8, 8, 3), 0.4, np.float32)
    plate[2, 3] = np.nan
    clean[5, 5, 1] = np.inf
    alpha = np.zeros((8, 8), np.float32)
    alpha[:4] = 0.5
    fg = matte_classical.solve_foreground(plate, clean, alpha)
    assert np.all(np.isfinite(fg)) and np.all(fg[2, 3] == 0) and np.all(fg[5, 5] == 0)
    assert np.allclose(fg[0, 0], 0.5 - 0.5 * 0.4)


def test_the_server_delivers_the_shadow(client: Client, shadowed: MatteShot) -> None:
    result = client.process(
        "matte-classical",
        {"plate": shadowed.plates[1], "clean_plate": shadowed.cleans[1], "background": shadowed.backgrounds[1]},
    )
    local = matte_classical.run(matte_classical.load(device="cpu"), call_for(shadowed, 1))
    for name in ("foreground", "composite"):
        for channel in RGB:
            assert np.array_equal(result.outputs[name].channels[channel], local[name].channels[channel])
    alpha = result.outputs["alpha"].channels["A"]
    cast = (shadowed.set_light[1].sum(axis=2) < -SHADOW_LEVEL) & (alpha == 0)
    assert cast.any() and result.outputs["foreground"].stack(RGB)[cast].max() < 0


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param("no-clean", "clean_plate", id="missing-clean-plate"),
        pytest.param("small-clean", "window", id="clean-plate-of-wrong-size"),
    ],
)
def test_bad_inputs_are_refused_clearly(client: Client, shot: MatteShot, inputs: str, message: str) -> None:
    given: dict[str, Frame] = {"plate": shot.plates[0]}
    if inputs == "small-clean":
        clean = shot.cleans[0]
        window = Box.from_size(clean.width // 2, clean.height // 2)
        given["clean_plate"] = Frame(
            {k: np.ascontiguousarray(v[: window.height, : window.width]) for k, v in clean.channels.items()},
            window,
            window,
        )
    with pytest.raises(PlateforgeError, match=message):
        client.process("matte-classical", given)


def test_cli_process_writes_named_outputs(server: ServerProcess, tmp_path: Path) -> None:
    shot = make_matte_shot(width=96, height=64, frames=2, seed=3)
    write_matte_shot(shot, tmp_path / "in")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env.update(PLATEFORGE_SERVER=server.address, PLATEFORGE_TOKEN=server.token or "")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "plateforge.cli.main",
            "process",
            "--model",
            "matte-classical",
            "--input",
            str(tmp_path / "in" / "plate.####.exr"),
            "--in",
            f"clean_plate={tmp_path / 'in' / 'clean.####.exr'}",
            "--in",
            f"background={tmp_path / 'in' / 'background.####.exr'}",
            "--frames",
            "1001-1002",
            "--output",
            f"alpha={tmp_path / 'out' / 'alpha.####.exr'}",
            "--output",
            f"composite={tmp_path / 'out' / 'comp.####.exr'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    alpha = read_exr(tmp_path / "out" / "alpha.1002.exr")
    assert sad(alpha.channels["A"], shot.alpha(1)) < MAX_SAD
    assert read_exr(tmp_path / "out" / "comp.1001.exr").channels["A"].min() == 1.0
