"""The Blender node's pure helpers: the stored model description and the frames it captures."""

from __future__ import annotations

import pytest

from plateforge.errors import UsageError
from plateforge.hosts.blender_bake import capture_frames, decode_model_info, encode_model_info, resolve_folder
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec

INFO = ModelInfo(
    name="cleanup-x",
    version="3",
    tool="cleanup",
    inputs=(InputSpec("plate", channels=("R", "G", "B"), temporal_radius=2), InputSpec("mask", required=False)),
    outputs=(OutputSpec("image", channels=("R", "G", "B")),),
    parameters=(
        ParamSpec("radius", "int", 5, minimum=1, maximum=32),
        ParamSpec("method", "choice", "telea", choices=("telea", "ns")),
        ParamSpec("strength", "float", 0.5),
        ParamSpec("align", "bool", True),
    ),
    attributes={"weights_sha256": "ab" * 32},
)


def test_model_info_survives_the_blend_file() -> None:
    assert decode_model_info(encode_model_info(INFO)) == INFO


@pytest.mark.parametrize("text", [pytest.param("{", id="not-json"), pytest.param('{"nmae": 1}', id="unknown-field")])
def test_a_damaged_model_description_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match=r"plateforge\.v1\.ModelInfo"):
        decode_model_info(text)


@pytest.mark.parametrize(
    ("frames", "radius", "expected"),
    [
        pytest.param([1, 2, 3], 0, [1, 2, 3], id="no-neighbours"),
        pytest.param([1, 2, 3], 2, [1, 2, 3, 4, 5], id="clipped-to-scene"),
        pytest.param([5], 1, [4, 5, 6], id="inside"),
        pytest.param([12], 1, [12], id="target-outside-scene-kept"),
        pytest.param([], 2, [], id="nothing"),
    ],
)
def test_capture_frames(frames: list[int], radius: int, expected: list[int]) -> None:
    assert capture_frames(frames, radius=radius, first=1, last=10) == expected


@pytest.mark.parametrize(
    ("path", "blend", "expected"),
    [
        pytest.param("//plateforge_cache/", "/shots/sh010/comp.blend", "/shots/sh010/plateforge_cache", id="relative"),
        pytest.param("//../cache", "/shots/sh010/comp.blend", "/shots/cache", id="parent"),
        pytest.param("/mnt/cache/", "", "/mnt/cache/", id="absolute-unsaved"),
        pytest.param("//cache", "C:\\shots\\comp.blend", "C:\\shots\\cache", id="windows"),
    ],
)
def test_resolve_folder(path: str, blend: str, expected: str) -> None:
    assert resolve_folder(path, blend_file=blend, what="the cache") == expected


@pytest.mark.parametrize(
    ("path", "blend", "message"),
    [
        pytest.param(
            "//plateforge_cache/", "", r"save the \.blend first: the cache \(//plateforge_cache/\)", id="unsaved"
        ),
        pytest.param("cache/", "/shots/comp.blend", r"'cache/' is a relative folder", id="cwd-relative"),
        pytest.param("  ", "/shots/comp.blend", r"no folder given", id="empty"),
    ],
)
def test_resolve_folder_refuses(path: str, blend: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_folder(path, blend_file=blend, what="the cache")
