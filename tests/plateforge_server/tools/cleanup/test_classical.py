"""cleanup-classical on the synthetic daily, against its exact clean plate.

Calls are built directly (no server): a ToolCall per target frame carrying the target and up to
two neighbours each side, as the server would send them.
"""

from __future__ import annotations

import numpy as np
import pytest

from plateforge.errors import CancelledError
from plateforge.frames import Box, Frame
from plateforge.metrics import psnr
from plateforge.models import ParamValue, resolve_params
from plateforge.shots.synthetic import Shot, make_shot
from plateforge_server.tools.base import ToolCall, as_tool_module
from plateforge_server.tools.cleanup import classical as cleanup_classical

INFO = cleanup_classical.INFO
#: Frames the quality tests clean: the first (forward neighbours only), the last, and between.
SAMPLE = (0, 5, 11, 17, 23)
#: Measured on this shot (seed 0) over SAMPLE, PSNR inside the mask, peak 1: temporal + spatial
#: 31.9 dB, spatial only 17.6 dB, unaligned neighbours 17.1 dB. Each bar sits a few dB below.
MIN_PSNR = 29.0
MIN_GAIN_OVER_SPATIAL = 10.0
MIN_GAIN_FROM_ALIGNMENT = 10.0
#: PSNR over the masked pixels a neighbour within 2 frames shows (by the exact cameras): 40.7 dB.
#: The whole-mask figure is dominated by what only inpainting can fill, so this is the bar that
#: catches a worse temporal fill (bilinear warps: 38.2 dB, no ECC refinement: 38.4 dB).
MIN_PSNR_REVEALED = 38.5


@pytest.fixture(scope="module")
def shot() -> Shot:
    return make_shot(seed=0)


@pytest.fixture(scope="module")
def state() -> object:
    return cleanup_classical.load(device="cpu")


def make_call(shot: Shot, index: int, **params: ParamValue) -> ToolCall:
    lo, hi = max(0, index - 2), min(len(shot), index + 3)
    return ToolCall(
        info=INFO,
        inputs={"plate": list(shot.plates[lo:hi]), "mask": list(shot.masks[lo:hi])},
        params=resolve_params(INFO, params),
        target_frame=shot.frame_numbers[index],
    )


def clean(state: object, call: ToolCall) -> Frame:
    outputs = cleanup_classical.run(state, call)  # type: ignore[arg-type]
    assert list(outputs) == ["image"]
    return outputs["image"]


def masked_psnr(shot: Shot, results: dict[int, Frame], *, revealed: bool = False) -> float:
    """PSNR over all the frames' masked pixels together (pooled), R, G, B, peak 1.

    ``revealed``: only over the masked pixels a neighbour within 2 frames shows.
    """
    got = np.concatenate([results[i].stack(("R", "G", "B")) for i in results])
    truth = np.concatenate([shot.cleans[i].stack(("R", "G", "B")) for i in results])
    if revealed:
        selected = [shot.revealed(shot.frame_numbers[i], 2) for i in results]
    else:
        selected = [shot.masks[i].channels["A"] > 0 for i in results]
    return psnr(got, truth, mask=np.concatenate(selected).astype(np.float64))


@pytest.fixture(scope="module")
def default_results(shot: Shot, state: object) -> dict[int, Frame]:
    return {i: clean(state, make_call(shot, i)) for i in SAMPLE}


def _bits(pixels: np.ndarray) -> np.ndarray:
    return pixels.view(np.uint16 if pixels.dtype == np.float16 else np.uint32)


def test_contract() -> None:
    module = as_tool_module(cleanup_classical)
    assert (module.info.name, module.info.tool, module.info.version) == ("cleanup-classical", "cleanup", "1")
    assert module.info.input("plate").channels == ("R", "G", "B")
    assert module.info.input("plate").temporal_radius == 2 and module.info.input("mask").temporal_radius == 2
    assert [o.name for o in module.info.outputs] == ["image"]
    params = {p.name: p for p in module.info.parameters}
    assert resolve_params(INFO, {}) == {
        "temporal_radius": 2,
        "align": True,
        "flow": True,
        "inpaint_method": "telea",
        "inpaint_radius": 5,
    }
    assert (params["temporal_radius"].minimum, params["temporal_radius"].maximum) == (0, 2)
    assert (params["inpaint_radius"].minimum, params["inpaint_radius"].maximum) == (1, 32)
    assert params["inpaint_method"].choices == ("telea", "ns")
    assert all(p.description for p in module.info.parameters)


def test_fills_the_mask_close_to_the_clean_plate(shot: Shot, default_results: dict[int, Frame]) -> None:
    value = masked_psnr(shot, default_results)
    assert value >= MIN_PSNR, f"PSNR inside the mask {value:.2f} dB < {MIN_PSNR} dB"
    for i, result in default_results.items():  # every frame, the first included, is cleaned
        single = masked_psnr(shot, {i: result})
        assert single >= MIN_PSNR - 2, f"frame index {i}: {single:.2f} dB"


def test_temporal_fill_is_accurate_where_neighbours_show_the_set(
    shot: Shot, state: object, default_results: dict[int, Frame]
) -> None:
    value = masked_psnr(shot, default_results, revealed=True)
    assert value >= MIN_PSNR_REVEALED, f"PSNR where neighbours show the set {value:.2f} dB < {MIN_PSNR_REVEALED} dB"


def test_beats_spatial_inpainting_alone(shot: Shot, state: object, default_results: dict[int, Frame]) -> None:
    spatial = masked_psnr(shot, {i: clean(state, make_call(shot, i, temporal_radius=0)) for i in SAMPLE})
    full = masked_psnr(shot, default_results)
    assert full >= spatial + MIN_GAIN_OVER_SPATIAL, f"temporal {full:.2f} dB vs spatial only {spatial:.2f} dB"


def test_alignment_matters_on_a_panning_shot(shot: Shot, state: object, default_results: dict[int, Frame]) -> None:
    unaligned = masked_psnr(shot, {i: clean(state, make_call(shot, i, align=False)) for i in SAMPLE})
    full = masked_psnr(shot, default_results)
    assert full >= unaligned + MIN_GAIN_FROM_ALIGNMENT, f"aligned {full:.2f} dB vs unaligned {unaligned:.2f} dB"


def test_first_frame_fills_from_the_frames_after_it(
    shot: Shot, state: object, default_results: dict[int, Frame]
) -> None:
    call = make_call(shot, 0)
    assert [f.frame_number for f in call.inputs["plate"]] == [1001, 1002, 1003]
    full = masked_psnr(shot, {0: default_results[0]})
    spatial = masked_psnr(shot, {0: clean(state, make_call(shot, 0, temporal_radius=0))})
    assert full >= MIN_PSNR - 2 and full >= spatial + 5, f"first frame {full:.2f} dB, spatial only {spatial:.2f} dB"


def test_alignment_is_subpixel(shot: Shot) -> None:
    """The module's alignment (a private helper) against the exact cameras, at the frame's corners."""
    from plateforge_server.tools.cleanup.classical import _align, _erode, _log_luma, _prepare_target

    def homogeneous(matrix: np.ndarray) -> np.ndarray:
        return np.vstack([matrix, [0.0, 0.0, 1.0]])

    centre = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # array index -> pixel centre
    corners = np.array([[0, shot.width, 0, shot.width], [0, 0, shot.height, shot.height], [1, 1, 1, 1]], float)
    for t, n in ((0, 2), (11, 10), (11, 13), (23, 21)):
        target = _prepare_target(shot.plates[t].stack(("R", "G", "B")), shot.masks[t].channels["A"])
        clear = _erode(shot.masks[n].channels["A"] <= 0, 2)
        found = _align(target, _log_luma(shot.plates[n].stack(("R", "G", "B"))), clear)
        assert found is not None
        truth = np.linalg.inv(centre) @ np.linalg.inv(homogeneous(shot.cameras[n])) @ homogeneous(shot.cameras[t])
        error = np.abs(found @ corners - (truth @ centre)[:2] @ corners).max()
        assert error < 0.15, f"frame index {t} from {n}: alignment off by {error:.3f} px at a corner"


def test_navier_stokes_and_one_neighbour_work(shot: Shot, state: object) -> None:
    ns = clean(state, make_call(shot, 11, inpaint_method="ns", inpaint_radius=3))
    one = clean(state, make_call(shot, 11, temporal_radius=1))
    assert masked_psnr(shot, {11: ns}) >= MIN_PSNR - 2
    assert masked_psnr(shot, {11: one}) >= 20.0


def test_outside_the_mask_and_other_channels_pass_through(shot: Shot, default_results: dict[int, Frame]) -> None:
    for i, result in default_results.items():
        plate, mask = shot.plates[i], shot.masks[i].channels["A"]
        assert list(result.channels) == list(plate.channels)
        assert (result.data_window, result.display_window, result.frame_number) == (
            plate.data_window,
            plate.display_window,
            plate.frame_number,
        )
        for name in ("R", "G", "B"):
            assert result.channels[name].dtype == np.float16
            same = _bits(result.channels[name]) == _bits(plate.channels[name])
            assert bool(np.all(same[mask == 0])), f"{name} changed outside the mask"
            assert not bool(np.all(same[mask == 1])), f"{name} unchanged inside the mask"
        for name in ("A", "Z"):
            assert result.channels[name].dtype == plate.channels[name].dtype
            assert result.channels[name].tobytes() == plate.channels[name].tobytes(), f"{name} changed"


def test_a_data_window_away_from_the_origin(shot: Shot, state: object, default_results: dict[int, Frame]) -> None:
    data, display = Box.from_size(shot.width, shot.height, x=37, y=-21), Box(0, 0, 639, 359)

    def moved(frame: Frame) -> Frame:
        return frame.replace(data_window=data, display_window=display)

    index = 11
    call = make_call(shot, index)
    call.inputs = {name: [moved(f) for f in frames] for name, frames in call.inputs.items()}
    result = clean(state, call)
    assert (result.data_window, result.display_window) == (data, display)
    for name, pixels in default_results[index].channels.items():
        assert result.channels[name].tobytes() == pixels.tobytes(), name


def test_cancelled_before_running(shot: Shot, state: object) -> None:
    call = make_call(shot, 11)
    call.cancelled.set()
    with pytest.raises(CancelledError):
        clean(state, call)


def test_an_empty_mask_returns_the_plate(shot: Shot, state: object) -> None:
    call = make_call(shot, 3)
    call.inputs["mask"] = [m.replace(channels={"A": np.zeros_like(m.channels["A"])}) for m in call.inputs["mask"]]
    result = clean(state, call)
    for name, pixels in shot.plates[3].channels.items():
        assert result.channels[name].tobytes() == pixels.tobytes()


def test_a_lone_frame_and_a_mask_in_another_channel(shot: Shot, state: object) -> None:
    """No neighbours (a still): spatial fill only; a mask whose only channel is not A is read."""
    plate, mask = shot.plates[5], shot.masks[5]
    call = ToolCall(
        info=INFO,
        inputs={"plate": [plate], "mask": [mask.replace(channels={"Y": mask.channels["A"]})]},
        params=resolve_params(INFO, {}),
        target_frame=plate.frame_number,
    )
    result = clean(state, call)
    spatial = clean(state, make_call(shot, 5, temporal_radius=0))
    for name in ("R", "G", "B"):
        assert result.channels[name].tobytes() == spatial.channels[name].tobytes()
    assert masked_psnr(shot, {5: result}) > 12.0
