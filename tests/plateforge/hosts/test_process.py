"""The node cache and process_cached against a real server process, with real EXR frames."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import CancelledError, ExrError, PlateforgeError
from plateforge.exr import read_exr, read_exr_header, sha256_file, write_exr
from plateforge.frames import Frame
from plateforge.hosts.cache import INDEX_SCHEMA, CacheLayout, chunk_frames, plan_frames, read_index
from plateforge.hosts.process import process_cached
from plateforge.sequences import frame_path
from plateforge.shots.synthetic import make_shot

FRAMES = [1001, 1002, 1003]


@pytest.fixture
def live(client: object) -> Client:
    assert isinstance(client, Client)
    return client


def render(layout: CacheLayout, name: str, frames: dict[int, Frame]) -> None:
    """What the host's internal Write does: the input, rendered as numbered EXRs in the cache."""
    for number, frame in frames.items():
        path = Path(frame_path(layout.input_pattern(name), number))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_exr(path, frame)


@pytest.fixture
def beachball(testdata: Path, tmp_path: Path) -> CacheLayout:
    """Three plate frames copied from a real EXR with a data window and many extra channels."""
    layout = CacheLayout.for_node(tmp_path, "Group1.PF_Model1")
    source = testdata / "Beachball" / "singlepart.0001.exr"
    for number in FRAMES:
        path = Path(frame_path(layout.input_pattern("plate"), number))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    return layout


def test_layout_names_files_by_node(tmp_path: Path) -> None:
    layout = CacheLayout.for_node(tmp_path, "Group1.PF Cleanup/1")
    assert layout.folder == tmp_path / "Group1.PF_Cleanup_1"
    assert layout.input_pattern("plate").endswith("inputs/plate.####.exr")
    assert layout.output_pattern("image").endswith("outputs/image.####.exr")
    with pytest.raises(PlateforgeError, match="no usable cache folder"):
        CacheLayout.for_node(tmp_path, "...")


def test_outputs_keep_windows_channels_and_carry_provenance(live: Client, beachball: CacheLayout) -> None:
    report = process_cached(live, layout=beachball, model="passthrough", frames=FRAMES, inputs=["plate"])
    assert report.sent == tuple(FRAMES) and report.skipped == ()
    source = read_exr(frame_path(beachball.input_pattern("plate"), 1001))
    for number in FRAMES:
        path = frame_path(beachball.output_pattern("image"), number)
        out = read_exr(path)
        assert out.data_window == source.data_window and out.display_window == source.display_window
        assert list(out.channels) == list(source.channels) and len(out.channels) > 4
        for name, pixels in source.channels.items():
            assert out.channels[name].dtype == pixels.dtype
            assert np.array_equal(out.channels[name], pixels, equal_nan=True)
        header = read_exr_header(path)[0].attributes
        assert header["plateforge/model"] == "passthrough"
        input_file = frame_path(beachball.input_pattern("plate"), number)
        assert header["plateforge/sourceFileSha256"] == sha256_file(input_file)
    index = json.loads(beachball.index_path.read_text())
    assert index["schema"] == INDEX_SCHEMA and sorted(index["frames"]) == [str(f) for f in FRAMES]


def test_unchanged_frames_are_not_sent_again(live: Client, beachball: CacheLayout) -> None:
    process_cached(live, layout=beachball, model="passthrough", frames=FRAMES, inputs=["plate"])
    output = Path(frame_path(beachball.output_pattern("image"), 1001))
    before = output.stat().st_mtime_ns
    again = process_cached(live, layout=beachball, model="passthrough", frames=FRAMES, inputs=["plate"])
    assert again.sent == () and again.skipped == tuple(FRAMES)
    assert output.stat().st_mtime_ns == before

    # A new render of one input frame, with other pixels: only that frame goes out again.
    changed = read_exr(frame_path(beachball.input_pattern("plate"), 1002))
    channels = dict(changed.channels)
    channels["R"] = (channels["R"].astype(np.float32) * 0.5).astype(channels["R"].dtype)
    render(beachball, "plate", {1002: changed.replace(channels=channels)})
    third = process_cached(live, layout=beachball, model="passthrough", frames=FRAMES, inputs=["plate"])
    assert third.sent == (1002,) and third.skipped == (1001, 1003)
    out = read_exr(frame_path(beachball.output_pattern("image"), 1002))
    assert np.array_equal(out.channels["R"], channels["R"], equal_nan=True)

    # A deleted output is made again; a wider range sends only the new frame.
    output.unlink()
    shutil.copyfile(
        frame_path(beachball.input_pattern("plate"), 1003), frame_path(beachball.input_pattern("plate"), 1004)
    )
    fourth = process_cached(live, layout=beachball, model="passthrough", frames=[*FRAMES, 1004], inputs=["plate"])
    assert fourth.sent == (1001, 1004)


@pytest.fixture
def shot(tmp_path: Path) -> CacheLayout:
    """A synthetic plate and mask (five frames), rendered into a cleanup node's cache."""
    made = make_shot(width=96, height=64, frames=5, seed=3)
    layout = CacheLayout.for_node(tmp_path, "PF_Cleanup1")
    numbers = list(made.frame_numbers)
    render(layout, "plate", dict(zip(numbers, made.plates, strict=True)))
    render(layout, "mask", dict(zip(numbers, made.masks, strict=True)))
    return layout


def test_parameters_and_temporal_neighbours_key_the_cache(live: Client, shot: CacheLayout) -> None:
    frames = [1001, 1002, 1003, 1004, 1005]
    params = {"temporal_radius": 1, "align": False}
    first = process_cached(
        live, layout=shot, model="cleanup-classical", frames=frames, inputs=["plate", "mask"], params=params
    )
    assert first.sent == tuple(frames)
    same = process_cached(
        live, layout=shot, model="cleanup-classical", frames=frames, inputs=["plate", "mask"], params=params
    )
    assert same.sent == ()
    # The default parameters are another computation: every frame is stale.
    info = live.model_info("cleanup-classical")
    plan = plan_frames(shot, info, params={}, frames=frames, inputs=["plate", "mask"])
    assert plan.stale == tuple(frames)
    # A changed mask on 1001 changes 1001's result and, through the temporal neighbours (the
    # model declares its inputs with radius 2), those of 1002 and 1003; 1004 and 1005 stay cached.
    mask = read_exr(frame_path(shot.input_pattern("mask"), 1001))
    render(shot, "mask", {1001: mask.replace(channels={k: np.zeros_like(v) for k, v in mask.channels.items()})})
    plan = plan_frames(shot, info, params=params, frames=frames, inputs=["plate", "mask"])
    assert plan.stale == (1001, 1002, 1003) and plan.fresh == (1004, 1005)
    again = process_cached(
        live, layout=shot, model="cleanup-classical", frames=frames, inputs=["plate", "mask"], params=params
    )
    assert again.sent == (1001, 1002, 1003)


def test_cancel_keeps_finished_frames_cached(live: Client, shot: CacheLayout) -> None:
    frames = [1001, 1002, 1003, 1004, 1005]
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int, frame: int) -> None:
        seen.append(frame)
        cancel.set()

    with pytest.raises(CancelledError):
        process_cached(
            live, layout=shot, model="passthrough", frames=frames, inputs=["plate"], progress=progress, cancel=cancel
        )
    assert seen and set(read_index(shot)) == set(seen) and len(seen) < len(frames)
    for number in seen:
        read_exr(frame_path(shot.output_pattern("image"), number))  # complete, readable
    rest = process_cached(live, layout=shot, model="passthrough", frames=frames, inputs=["plate"])
    assert rest.sent == tuple(f for f in frames if f not in seen)


def test_bad_requests_are_refused_by_name(live: Client, shot: CacheLayout) -> None:
    with pytest.raises(ExrError, match=r"input 'plate' frame 1009: .*plate\.1009\.exr does not exist"):
        process_cached(live, layout=shot, model="passthrough", frames=[1009], inputs=["plate"])
    with pytest.raises(PlateforgeError, match=r"needs input\(s\) \['mask'\] connected"):
        process_cached(live, layout=shot, model="cleanup-classical", frames=[1001], inputs=["plate"])
    with pytest.raises(PlateforgeError, match="takes no input"):
        process_cached(live, layout=shot, model="passthrough", frames=[1001], inputs=["plate", "matte"])
    with pytest.raises(PlateforgeError, match="inpaint_radius"):
        process_cached(
            live,
            layout=shot,
            model="cleanup-classical",
            frames=[1001],
            inputs=["plate", "mask"],
            params={"inpaint_radius": 99},
        )


def test_an_unreadable_index_means_nothing_is_cached(live: Client, shot: CacheLayout) -> None:
    process_cached(live, layout=shot, model="passthrough", frames=[1001, 1002], inputs=["plate"])
    shot.index_path.write_text("{not json")
    assert read_index(shot) == {}
    assert process_cached(live, layout=shot, model="passthrough", frames=[1001, 1002], inputs=["plate"]).sent == (
        1001,
        1002,
    )
    shot.index_path.write_text(json.dumps({"schema": "plateforge.nodecache/99", "frames": {"1001": "x"}}))
    assert read_index(shot) == {}


@pytest.mark.parametrize(
    ("frames", "size", "contiguous", "expected"),
    [
        pytest.param([1, 2, 3, 4, 5], 2, True, [[1, 2], [3, 4], [5]], id="runs-of-two"),
        pytest.param([5, 1, 2, 2, 3], 10, True, [[1, 2, 3], [5]], id="sorted-deduplicated-gap-splits"),
        pytest.param([1, 3, 5, 7], 3, False, [[1, 3, 5], [7]], id="gaps-allowed"),
        pytest.param([1, 3, 5, 7], 3, True, [[1], [3], [5], [7]], id="every-other-frame-contiguous"),
        pytest.param([], 4, True, [], id="nothing"),
    ],
)
def test_chunk_frames(frames: list[int], size: int, contiguous: bool, expected: list[list[int]]) -> None:
    assert chunk_frames(frames, size=size, contiguous=contiguous) == expected


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(PlateforgeError, match="at least 1"):
        chunk_frames([1], size=0)


def test_model_key_follows_weights_version_and_parameters() -> None:
    from plateforge.hosts.cache import model_key
    from plateforge.models import ModelInfo, ParamSpec

    info = ModelInfo("look", "1", "look", parameters=(ParamSpec("gain", "float", 1.0),), attributes={"model_hash": "a"})
    key = model_key(info, {})
    assert model_key(info, {"gain": 1.0}) == key  # the default, given or not, is the same computation
    assert model_key(info, {"gain": 2.0}) != key
    assert (
        model_key(ModelInfo("look", "1", "look", parameters=info.parameters, attributes={"model_hash": "b"}), {}) != key
    )
    assert model_key(ModelInfo("look", "2", "look", parameters=info.parameters, attributes=info.attributes), {}) != key
