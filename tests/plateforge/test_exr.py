"""plateforge.exr against real EXR files: the OpenEXR test images and the fuzzed Damaged/ set.

Damaged files are read in child processes, so a native crash or a hang in the OpenEXR library
fails a test (naming the file) instead of killing pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import pytest

from plateforge.errors import ExrError
from plateforge.exr import (
    COMPRESSIONS,
    read_exr,
    read_exr_header,
    read_exr_parts,
    sha256_file,
    write_exr,
    write_exr_parts,
)
from plateforge.frames import PIXEL_DTYPES, Box, Frame
from tests.conftest import TESTDATA, needs_testdata
from tests.frames_for_tests import assert_same_frame, bits

DAMAGED = TESTDATA / "Damaged"


def _relative(path: Path) -> str:
    return path.relative_to(TESTDATA).as_posix()


def _params(paths: Sequence[Path]) -> list[Any]:
    """One pytest.param per file, id = path inside the test data; a failure naming where it must
    be when it is absent (see tests/conftest.py)."""
    if not paths:
        return [pytest.param(None, id="no-testdata", marks=needs_testdata)]
    return [pytest.param(path, id=_relative(path)) for path in paths]


def _good_files() -> list[Path]:
    if not TESTDATA.is_dir():
        return []
    return sorted(p for p in TESTDATA.rglob("*.exr") if DAMAGED not in p.parents)


def _damaged_files() -> list[Path]:
    if not DAMAGED.is_dir():
        return []
    return sorted(p for p in DAMAGED.iterdir() if p.is_file())


GOOD = _good_files()


def _part_keys(path: Path) -> list[str | int]:
    """How to ask for each part: by name where it has one, by index otherwise."""
    return [info.name or index for index, info in enumerate(read_exr_header(path))]


def _frame(width: int = 7, height: int = 5, *, x: int = 0, y: int = 0, seed: int = 0) -> Frame:
    """A small frame with a half, a float and a uint channel and an offset data window."""
    rng = np.random.default_rng(seed)
    window = Box.from_size(width, height, x=x, y=y)
    return Frame(
        {
            "R": rng.standard_normal((height, width)).astype(np.float16),
            "Z": (rng.standard_normal((height, width)) * 1e6).astype(np.float32),
            "id": rng.integers(0, 2**32, size=(height, width), dtype=np.uint32),
        },
        window,
        Box(-3, -2, width + 10, height + 10),
    )


# -- reading the good images ------------------------------------------------------------------


@pytest.mark.parametrize("path", _params(GOOD))
def test_every_part_of_every_image_reads(path: Path) -> None:
    infos = read_exr_header(path)
    assert infos
    if len(infos) > 1:
        assert all(info.name for info in infos), "multipart files name their parts"
    for key, info in zip(_part_keys(path), infos, strict=True):
        frame = read_exr(path, part=key)
        assert frame.frame_number is None
        assert frame.data_window == info.data_window
        assert frame.display_window == info.display_window
        assert list(frame.channels) == [name for name, _, _, _ in info.channels]
        for name, pixel_type, xs, ys in info.channels:
            pixels = frame.channels[name]
            assert pixels.dtype == PIXEL_DTYPES[pixel_type], name
            assert frame.sampling.get(name, (1, 1)) == (xs, ys)
            assert pixels.shape == frame.channel_shape(name)
            assert pixels.flags.c_contiguous


@needs_testdata
@pytest.mark.parametrize(
    ("relative", "data_window", "display_window"),
    [
        pytest.param("DisplayWindow/t01.exr", Box(0, 0, 399, 299), Box(0, 0, 399, 299), id="t01-same"),
        pytest.param("DisplayWindow/t06.exr", Box(0, 0, 399, 299), Box(-1, -1, 400, 300), id="t06-display-larger"),
        pytest.param("DisplayWindow/t08.exr", Box(30, 40, 429, 339), Box(0, 0, 500, 400), id="t08-data-offset"),
        pytest.param("DisplayWindow/t10.exr", Box(0, 0, 399, 299), Box(-100, 0, -1, 299), id="t10-disjoint-left"),
        pytest.param("DisplayWindow/t14.exr", Box(0, 0, 399, 299), Box(-100, -100, 0, 0), id="t14-corner"),
        pytest.param(
            "Beachball/multipart.0001.exr", Box(654, 245, 1530, 1120), Box(0, 0, 2047, 1555), id="beachball-part0"
        ),
    ],
)
def test_known_windows(relative: str, data_window: Box, display_window: Box) -> None:
    frame = read_exr(TESTDATA / relative)
    assert frame.data_window == data_window
    assert frame.display_window == display_window
    assert frame.width == data_window.width and frame.height == data_window.height


@needs_testdata
@pytest.mark.parametrize(
    ("relative", "dtypes"),
    [
        pytest.param("TestImages/WideFloatRange.exr", {"G": np.float32}, id="float32"),
        pytest.param("TestImages/AllHalfValues.exr", dict.fromkeys("BGR", np.float16), id="half"),
        pytest.param("TestImages/BrightRingsNanInf.exr", dict.fromkeys("BGR", np.float16), id="half-nan-inf"),
        pytest.param("LuminanceChroma/Garden.exr", {"Y": np.float16}, id="tiled-luminance"),
    ],
)
def test_pixel_types_are_preserved(relative: str, dtypes: dict[str, type]) -> None:
    frame = read_exr(TESTDATA / relative)
    assert {name: pixels.dtype for name, pixels in frame.channels.items()} == {
        name: np.dtype(dtype) for name, dtype in dtypes.items()
    }


@needs_testdata
def test_all_half_values_arrive_bit_exact() -> None:
    frame = read_exr(TESTDATA / "TestImages/AllHalfValues.exr")
    for name, pixels in frame.channels.items():
        assert np.unique(bits(pixels)).size == 65536, f"channel {name} lost half bit patterns"


@needs_testdata
def test_nan_and_inf_are_kept() -> None:
    frame = read_exr(TESTDATA / "TestImages/BrightRingsNanInf.exr")
    assert frame.non_finite_channels() == ["B", "G", "R"]


@needs_testdata
def test_subsampled_channels_keep_their_stored_shape() -> None:
    frame = read_exr(TESTDATA / "Chromaticities/Rec709_YC.exr")
    assert frame.sampling == {"BY": (2, 2), "RY": (2, 2)}
    assert frame.channels["Y"].shape == (406, 610)
    assert frame.channels["RY"].shape == frame.channels["BY"].shape == (203, 305)


@needs_testdata
def test_mipmapped_tiled_file_gives_full_resolution() -> None:
    frame = read_exr(TESTDATA / "MultiResolution/ColorCodedLevels.exr")
    assert (frame.width, frame.height) == (512, 512)
    assert list(frame.channels) == ["A", "B", "G", "R"]


@needs_testdata
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        pytest.param("Chromaticities/Rec709_YC.exr", {"owner": "Copyright 2006 Industrial Light & Magic"}, id="owner"),
        pytest.param(
            "MultiResolution/ColorCodedLevels.exr",
            {
                "comments": "a mip-map image with color-coded levels",
                "owner": "Copyright 2005 Industrial Light & Magic",
                "wrapmodes": "periodic,periodic",
            },
            id="comments-wrapmodes",
        ),
        pytest.param("DisplayWindow/t08.exr", {}, id="none"),
    ],
)
def test_string_attributes_are_read(relative: str, expected: dict[str, str]) -> None:
    assert read_exr(TESTDATA / relative).attributes == expected


@needs_testdata
def test_parts_by_name_and_index() -> None:
    path = TESTDATA / "Beachball/multipart.0001.exr"
    by_name = read_exr(path, part="depth_left")
    by_index = read_exr(path, part=1)
    assert list(by_name.channels) == ["Z"]
    assert_same_frame(by_index, by_name)
    assert by_name.attributes == {"view": "left"}
    assert list(read_exr(path).channels) == ["A", "B", "G", "R"]  # the first part by default


@needs_testdata
@pytest.mark.parametrize(
    ("part", "fragment"),
    [
        pytest.param("nope", "no part named 'nope'", id="unknown-name"),
        pytest.param(10, "out of range", id="index-too-large"),
        pytest.param(-1, "out of range", id="negative-index"),
    ],
)
def test_unknown_part_lists_the_parts(part: str | int, fragment: str) -> None:
    path = TESTDATA / "Beachball/multipart.0001.exr"
    with pytest.raises(ExrError) as caught:
        read_exr(path, part=part)
    message = str(caught.value)
    assert str(path) in message and fragment in message
    assert "'rgba_right'" in message and "'whitebarmask_right'" in message


@needs_testdata
def test_parts_larger_than_max_pixels_are_refused() -> None:
    path = TESTDATA / "DisplayWindow/t08.exr"
    with pytest.raises(ExrError, match=r"120000 pixels, more than the limit of 1000") as caught:
        read_exr(path, max_pixels=1000)
    assert str(path) in str(caught.value)
    assert read_exr(path, max_pixels=120_000).width == 400


@needs_testdata
@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("openexr_2.2.0_memory_allocation_error_2_exr", "more than the limit", id="huge-window"),
        pytest.param("memory_DOS_1", "more than the limit", id="memory-dos"),
        pytest.param("imf_test_deep_tile_file_fuzz_broken_exr", "deep data is not supported", id="deep"),
        pytest.param("openexr_2.5.1_null_deref_error", "not valid UTF-8", id="bad-utf8"),
    ],
)
def test_damaged_headers_are_refused_before_reading_pixels(name: str, fragment: str) -> None:
    # Refused from the header alone, so safe to run in this process.
    path = DAMAGED / name
    with pytest.raises(ExrError) as caught:
        read_exr(path)
    assert f"'{path}'" in str(caught.value) and fragment in str(caught.value)


# -- headers ----------------------------------------------------------------------------------

BEACHBALL_PARTS = [
    "rgba_right",
    "depth_left",
    "forward_left",
    "whitebarmask_left",
    "rgba_left",
    "depth_right",
    "forward_right",
    "disparityL",
    "disparityR",
    "whitebarmask_right",
]


@needs_testdata
def test_header_of_multipart_file_lists_its_parts() -> None:
    infos = read_exr_header(TESTDATA / "Beachball/multipart.0001.exr")
    assert [info.name for info in infos] == BEACHBALL_PARTS
    assert {info.storage for info in infos} == {"scanlineimage"}
    assert {info.compression for info in infos} == {"zips"}
    rgba = infos[BEACHBALL_PARTS.index("rgba_left")]
    assert rgba.channels == [(name, "half", 1, 1) for name in "ABGR"]
    assert rgba.data_window == Box(688, 245, 1564, 1120)
    assert rgba.display_window == Box(0, 0, 2047, 1555)
    assert rgba.attributes["view"] == "left"
    assert not rgba.is_deep


@needs_testdata
@pytest.mark.parametrize(
    ("relative", "storage", "compression", "channels"),
    [
        pytest.param(
            "Chromaticities/Rec709_YC.exr",
            "scanlineimage",
            "piz",
            [("BY", "half", 2, 2), ("RY", "half", 2, 2), ("Y", "half", 1, 1)],
            id="subsampled",
        ),
        pytest.param("TestImages/WideFloatRange.exr", "scanlineimage", "pxr24", [("G", "float", 1, 1)], id="float"),
        pytest.param("LuminanceChroma/Garden.exr", "tiledimage", "piz", [("Y", "half", 1, 1)], id="tiled"),
        pytest.param(
            "TestImages/BrightRingsNanInf.exr", "scanlineimage", "zip", [(c, "half", 1, 1) for c in "BGR"], id="zip"
        ),
    ],
)
def test_header_details(
    relative: str, storage: str, compression: str, channels: list[tuple[str, str, int, int]]
) -> None:
    (info,) = read_exr_header(TESTDATA / relative)
    assert (info.name, info.storage, info.compression, info.channels) == ("", storage, compression, channels)
    assert "compression" not in info.attributes and "channels" not in info.attributes
    assert info.attributes["pixelAspectRatio"] == "1.0"


@needs_testdata
def test_header_describes_deep_parts() -> None:
    (info,) = read_exr_header(DAMAGED / "imf_test_deep_tile_file_fuzz_broken_exr")
    assert info.storage == "deeptile" and info.is_deep and info.name == "bob"


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _params(GOOD))
def test_round_trip_is_bit_exact(path: Path, tmp_path: Path) -> None:
    parts = read_exr_parts(path)
    out = tmp_path / "out.exr"
    if len(parts) == 1:
        write_exr(out, parts[0][1])
        assert_same_frame(read_exr(out), parts[0][1])
        return
    write_exr_parts(out, parts)
    assert [info.name for info in read_exr_header(out)] == [name for name, _ in parts]
    back = read_exr_parts(out)
    assert [name for name, _ in back] == [name for name, _ in parts]
    for (_, got), (_, want) in zip(back, parts, strict=True):
        assert_same_frame(got, want)
    name, want = parts[-1]
    assert_same_frame(read_exr(out, part=name), want)


@needs_testdata
def test_read_exr_parts_matches_read_exr_by_name() -> None:
    path = TESTDATA / "Beachball/multipart.0001.exr"
    parts = read_exr_parts(path)
    assert [name for name, _ in parts] == BEACHBALL_PARTS
    assert_same_frame(dict(parts)["disparityR"], read_exr(path, part="disparityR"))
    ((name, frame),) = read_exr_parts(TESTDATA / "DisplayWindow/t08.exr")
    assert name == "" and frame.data_window == Box(30, 40, 429, 339)


def test_multipart_round_trip_with_mixed_parts(tmp_path: Path) -> None:
    display = Box(-3, -2, 30, 20)  # EXR requires one display window for all parts
    parts = [
        ("beauty", _frame(seed=1).replace(display_window=display)),
        ("depth", _frame(11, 3, x=-4, y=9, seed=2).replace(display_window=display)),
        ("mask", Frame.from_array(np.eye(4, dtype=np.float32), names=("mask",), display_window=display)),
    ]
    out = tmp_path / "parts.exr"
    write_exr_parts(out, parts, compression="piz", attributes={"shot": "sq010_sh020"})
    infos = read_exr_header(out)
    assert [info.name for info in infos] == ["beauty", "depth", "mask"]
    assert {info.compression for info in infos} == {"piz"}
    assert infos[0].channels == [("R", "half", 1, 1), ("Z", "float", 1, 1), ("id", "uint", 1, 1)]
    for name, frame in parts:
        got = read_exr(out, part=name)
        assert got.attributes == {"shot": "sq010_sh020"}
        assert_same_frame(got, frame.replace(attributes={"shot": "sq010_sh020"}))


@pytest.mark.parametrize(
    "compression",
    [pytest.param(name, id=name) for name in COMPRESSIONS],
)
def test_every_compression_writes(compression: str, tmp_path: Path) -> None:
    frame = _frame(64, 40, x=3, y=-5, seed=3)
    out = tmp_path / f"{compression}.exr"
    write_exr(out, frame, compression=compression)
    assert read_exr_header(out)[0].compression == compression
    got = read_exr(out)
    if compression in {"none", "rle", "zips", "zip", "piz"}:
        assert_same_frame(got, frame)
    else:  # lossy for some pixel types: check the layout only
        assert {n: (p.dtype, p.shape) for n, p in got.channels.items()} == {
            n: (p.dtype, p.shape) for n, p in frame.channels.items()
        }
        assert got.same_windows(frame)


def test_subsampled_channels_round_trip_with_offset_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    window = Box.from_size(8, 6, x=-4, y=2)
    frame = Frame(
        {
            "Y": rng.standard_normal((6, 8)).astype(np.float16),
            "RY": rng.standard_normal((3, 4)).astype(np.float16),
            "BY": rng.standard_normal((3, 4)).astype(np.float32),
        },
        window,
        window,
        sampling={"RY": (2, 2), "BY": (2, 2)},
    )
    out = tmp_path / "yc.exr"
    write_exr(out, frame, compression="zip")
    got = read_exr(out)
    assert_same_frame(got, frame.replace(channels={k: frame.channels[k] for k in ("BY", "RY", "Y")}))
    assert read_exr_header(out)[0].channels == [("BY", "float", 2, 2), ("RY", "half", 2, 2), ("Y", "half", 1, 1)]


def test_non_contiguous_channels_are_written_correctly(tmp_path: Path) -> None:
    transposed = np.arange(60, dtype=np.float32).reshape(10, 6).T  # Fortran order
    strided = np.arange(120, dtype=np.float16).reshape(6, 20)[:, ::2]  # every other column
    window = Box.from_size(10, 6)
    frame = Frame({"G": strided, "R": transposed}, window, window)
    assert not transposed.flags.c_contiguous and not strided.flags.c_contiguous
    write_exr(tmp_path / "out.exr", frame)
    assert_same_frame(read_exr(tmp_path / "out.exr"), frame)


def test_attributes_and_part_name_are_written(tmp_path: Path) -> None:
    frame = _frame().replace(attributes={"owner": "comp dept"})
    out = tmp_path / "named.exr"
    write_exr(out, frame, attributes={"plateforge.source": "plate_v001.0101.exr"}, part_name="beauty")
    (info,) = read_exr_header(out)
    assert info.name == "beauty"
    got = read_exr(out, part="beauty")
    assert got.attributes == {"owner": "comp dept", "plateforge.source": "plate_v001.0101.exr"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"compression": "jpeg"}, "unknown compression 'jpeg'; use one of none, rle, zips", id="jpeg"),
        pytest.param({"attributes": {"compression": "zip"}}, "attribute 'compression'", id="reserved-attribute"),
        pytest.param({"attributes": {"dataWindow": "0"}}, "attribute 'dataWindow'", id="reserved-window"),
        pytest.param({"attributes": {"frame": 12}}, "attribute 'frame' must be a string", id="non-string"),
    ],
)
def test_bad_write_arguments_raise_and_write_nothing(kwargs: dict[str, Any], fragment: str, tmp_path: Path) -> None:
    out = tmp_path / "out.exr"
    with pytest.raises(ExrError) as caught:
        write_exr(out, _frame(), **kwargs)
    assert str(out) in str(caught.value) and fragment in str(caught.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("parts", "fragment"),
    [
        pytest.param([], "no parts", id="empty"),
        pytest.param([("a", _frame()), ("a", _frame())], "used twice", id="duplicate"),
        pytest.param([("", _frame())], "non-empty name", id="unnamed"),
        pytest.param(
            [("a", _frame()), ("b", _frame(3, 3))], "must share one display window", id="different-display-windows"
        ),
    ],
)
def test_bad_multipart_names_raise(parts: list[tuple[str, Frame]], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ExrError, match=fragment):
        write_exr_parts(tmp_path / "out.exr", parts)
    assert os.listdir(tmp_path) == []


# -- atomic writes ----------------------------------------------------------------------------

REAL_FILE = OpenEXR.File


class _PartialThenFail:
    """Stands in for OpenEXR.File: writes half a file, then fails like a full disk would."""

    error: BaseException = RuntimeError("No space left on device")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._real = REAL_FILE(*args, **kwargs)

    def write(self, target: str) -> None:
        Path(target).write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 100)
        raise self.error


def _bad_channel_frame() -> Frame:
    frame = _frame()
    frame.channels["R"] = np.zeros((2, 2), dtype=np.float16)  # no longer matches the window
    return frame


def _odd_subsampled_frame() -> Frame:
    # Valid for Frame, but EXR needs subsampled windows to start on a multiple of the sampling.
    window = Box.from_size(4, 2, x=1)
    return Frame(
        {"Y": np.zeros((2, 4), np.float16), "C": np.zeros((1, 2), np.float16)},
        window,
        window,
        sampling={"C": (2, 2)},
    )


FAILURES: list[Any] = [
    pytest.param("bindings-raise", "No space left on device", id="bindings-raise-after-partial-write"),
    pytest.param("bindings-memory", "not enough memory", id="bindings-memory-error"),
    pytest.param("invalid-channel", "channel 'R' has shape (2, 2)", id="invalid-channel"),
    pytest.param("openexr-refuses", "OpenEXR says", id="openexr-refuses-odd-window"),
]


def _arrange_failure(kind: str, monkeypatch: pytest.MonkeyPatch) -> Frame:
    if kind == "bindings-raise":
        monkeypatch.setattr(OpenEXR, "File", _PartialThenFail)
        return _frame()
    if kind == "bindings-memory":
        failing = type("MemoryFailure", (_PartialThenFail,), {"error": MemoryError("out of memory")})
        monkeypatch.setattr(OpenEXR, "File", failing)
        return _frame()
    if kind == "invalid-channel":
        return _bad_channel_frame()
    return _odd_subsampled_frame()


@pytest.mark.parametrize(("kind", "fragment"), FAILURES)
def test_failed_write_leaves_no_file(kind: str, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _arrange_failure(kind, monkeypatch)
    out = tmp_path / "out.exr"
    with pytest.raises(ExrError) as caught:
        write_exr(out, frame)
    assert f"cannot write '{out}'" in str(caught.value) and fragment in str(caught.value)
    assert os.listdir(tmp_path) == [], "neither the destination nor a temporary file may remain"


@pytest.mark.parametrize(("kind", "fragment"), FAILURES)
def test_failed_write_keeps_existing_file(
    kind: str, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.exr"
    write_exr(out, _frame(seed=9))
    before = out.read_bytes()
    frame = _arrange_failure(kind, monkeypatch)
    with pytest.raises(ExrError) as caught:
        write_exr(out, frame)
    assert fragment in str(caught.value)
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.exr"]


def test_interrupted_write_cleans_up_and_reraises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    interrupted = type("Interrupted", (_PartialThenFail,), {"error": KeyboardInterrupt()})
    monkeypatch.setattr(OpenEXR, "File", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_exr(tmp_path / "out.exr", _frame())
    assert os.listdir(tmp_path) == []


def test_temporary_file_is_hidden_beside_the_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Recording:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._real = REAL_FILE(*args, **kwargs)

        def write(self, target: str) -> None:
            seen.append(target)
            self._real.write(target)

    monkeypatch.setattr(OpenEXR, "File", Recording)
    write_exr(tmp_path / "out.exr", _frame())
    (temp,) = seen
    assert Path(temp).parent == tmp_path
    assert Path(temp).name.startswith(".") and temp.endswith(".tmp")
    assert os.listdir(tmp_path) == ["out.exr"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_file_mode_honours_umask(tmp_path: Path) -> None:
    out = tmp_path / "out.exr"
    old = os.umask(0o027)
    try:
        write_exr(out, _frame())
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o640


def test_missing_directory_raises(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out.exr"
    with pytest.raises(ExrError, match="does not exist") as caught:
        write_exr(out, _frame())
    assert str(out) in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_destination_that_is_a_directory_raises(tmp_path: Path) -> None:
    (tmp_path / "out.exr").mkdir()
    with pytest.raises(ExrError, match="is a directory"):
        write_exr(tmp_path / "out.exr", _frame())
    assert os.listdir(tmp_path) == ["out.exr"]


def test_frame_without_channels_is_refused(tmp_path: Path) -> None:
    window = Box.from_size(4, 4)
    with pytest.raises(ExrError, match="no channels"):
        write_exr(tmp_path / "out.exr", Frame({}, window, window))
    assert os.listdir(tmp_path) == []


# -- files that are not EXRs ------------------------------------------------------------------


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.exr"
    path.write_text("this is not an image\n")
    return path


def _empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.exr"
    path.touch()
    return path


def _truncated_magic(tmp_path: Path) -> Path:
    path = tmp_path / "short.exr"
    path.write_bytes(b"\x76\x2f")
    return path


def _magic_then_garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.exr"
    path.write_bytes(b"\x76\x2f\x31\x01" + bytes(range(256)) * 4)
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.exr"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(read_exr, id="read_exr"),
        pytest.param(read_exr_parts, id="parts"),
        pytest.param(read_exr_header, id="header"),
    ],
)
@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        pytest.param(_text_file, "not an EXR file", id="text-file"),
        pytest.param(lambda tmp: tmp / "missing.exr", "no such file", id="missing"),
        pytest.param(_empty_file, "the file is empty", id="empty"),
        pytest.param(_truncated_magic, "not an EXR file", id="truncated-magic"),
        pytest.param(_magic_then_garbage, "OpenEXR says", id="magic-then-garbage"),
        pytest.param(_directory, "is a directory", id="directory"),
    ],
)
def test_not_an_exr_raises_exr_error(
    reader: Callable[[Path], object], make: Callable[[Path], Path], fragment: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    with pytest.raises(ExrError) as caught:
        reader(path)
    assert f"cannot read '{path}'" in str(caught.value) and fragment in str(caught.value)


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(ExrError, match="no such file"):
        sha256_file(tmp_path / "missing.bin")


# -- damaged files, each read in a child process ----------------------------------------------

CHILD = r"""
import sys
from plateforge.errors import ExrError
from plateforge.exr import read_exr, read_exr_header
from plateforge.frames import Frame

def outcome(reader, path):
    try:
        result = reader(path)
    except ExrError as exc:
        return "ExrError: " + " ".join(str(exc).split())
    if reader is read_exr and not (isinstance(result, Frame) and result.channels):
        return "BAD: read_exr returned " + repr(type(result))
    return "OK"

for path in sys.argv[1:]:
    print("START\t" + path, flush=True)
    for reader in (read_exr, read_exr_header):
        print("RESULT\t" + reader.__name__ + "\t" + path + "\t" + outcome(reader, path), flush=True)
"""
BATCHES = 3
CHILD_TIMEOUT_S = 60


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _run_damaged(paths: list[str]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Outcomes per (reader, file), and problems; a child that dies is restarted after its file."""
    outcomes: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    remaining = list(paths)
    while remaining:
        try:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, *remaining],
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT_S,
                check=False,
            )
            stdout, stderr, code = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as exc:
            stdout, stderr, code = _text(exc.stdout), _text(exc.stderr), None
        started = [line.split("\t", 1)[1] for line in stdout.splitlines() if line.startswith("START\t")]
        for line in stdout.splitlines():
            if line.startswith("RESULT\t"):
                _, reader, path, result = line.split("\t", 3)
                outcomes[(reader, path)] = result
        if "Traceback" in stderr:
            problems.append(f"traceback while reading {started[-1] if started else '?'}:\n{stderr[-3000:]}")
        if code == 0 and started == remaining:
            break
        last = started[-1] if started else remaining[0]
        why = f"timed out after {CHILD_TIMEOUT_S} s" if code is None else f"exited with code {code}"
        problems.append(f"child {why} while reading {last}")
        remaining = remaining[remaining.index(last) + 1 :]
    return outcomes, problems


def _batches() -> list[Any]:
    files = _damaged_files()
    if not files:
        return [pytest.param([], id="no-testdata", marks=needs_testdata)]
    size = -(-len(files) // BATCHES)
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    return [pytest.param(chunk, id=f"damaged-{k + 1}-of-{len(chunks)}") for k, chunk in enumerate(chunks)]


@pytest.mark.parametrize("files", _batches())
def test_damaged_files_raise_exr_error_or_read(files: list[Path]) -> None:
    paths = [str(p) for p in files]
    outcomes, problems = _run_damaged(paths)
    for path in paths:
        for reader in ("read_exr", "read_exr_header"):
            result = outcomes.get((reader, path))
            if result is None:
                problems.append(f"{reader}({path}) printed no outcome")
            elif result != "OK" and not (result.startswith("ExrError: ") and f"'{path}'" in result):
                problems.append(f"{reader}({path}) -> {result}")
    assert not problems, "\n".join(problems)


@needs_testdata
def test_damaged_batches_cover_the_whole_folder() -> None:
    covered = [p for param in _batches() for p in param.values[0]]
    assert covered == sorted(p for p in DAMAGED.iterdir() if p.is_file())
    assert len(covered) > 50


@needs_testdata
@pytest.mark.parametrize("name", ["t15.exr", "t16.exr"])
def test_anamorphic_pixel_aspect_is_kept(name: str, tmp_path: Path) -> None:
    frame = read_exr(TESTDATA / "DisplayWindow" / name)
    header = read_exr_header(TESTDATA / "DisplayWindow" / name)[0]
    assert frame.pixel_aspect == pytest.approx(float(header.attributes["pixelAspectRatio"]))
    assert frame.pixel_aspect != 1.0
    write_exr(tmp_path / "out.exr", frame)
    assert read_exr(tmp_path / "out.exr").pixel_aspect == frame.pixel_aspect
