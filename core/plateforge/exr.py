"""EXR files in and out: the one place that talks to the OpenEXR bindings.

Why a module of its own: plates arrive from many departments and some are damaged (truncated
renders, fuzzed or half-copied files), and the OpenEXR Python bindings fail on them in many ways:
``RuntimeError``, ``ValueError``, ``IndexError``, ``UnicodeDecodeError``, ``MemoryError``, or a
"successful" read that silently drops a part and only prints a warning. Everything here turns
every such failure into one :class:`~plateforge.errors.ExrError` whose message names the file
and the reason, so a farm log says which plate is bad and why instead of showing a traceback.

The rest of the package sees only :class:`~plateforge.frames.Frame`: every channel of one part,
each in its stored pixel type (half stays ``float16``), at its stored sampling, rows top to
bottom, with the data and display windows from the header.

Things the bindings (3.5.x) get wrong that this module works around, on purpose and tested:

* A header-only read does not report channel pixel types (``Channel.type()`` raises), so
  :func:`read_exr_header` reads the pixel types from the file's channel list itself.
* Writing subsampled channels (luminance/chroma files) fails with "channel shapes differ";
  they are handed to the bindings in the compact layout the C++ library expects, inside an
  array of the full data-window shape, and checked by reading the written file back.
* Non-contiguous arrays (transposed, strided views) are written as garbage without an error;
  every channel is made C-contiguous first.
* ``OpenEXR.Part`` adds keys to the header dict it is given, so each part gets a fresh one.
* Parts the bindings cannot decode are dropped with a printed warning, not an exception; a
  missing part is reported as an ExrError here.

Writes are atomic: the file is written under a hidden temporary name in the destination folder
and renamed over the destination only once complete, so a crash, a full disk or a bad frame
never leaves a partial EXR where a reader (or the next farm task) would pick it up.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn, TypeAlias

import numpy as np
import OpenEXR

from plateforge import atomic
from plateforge.errors import ExrError
from plateforge.frames import PIXEL_DTYPES, Box, Frame, pixel_type_of

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MAX_PIXELS",
    "EXR_MAGIC",
    "PartInfo",
    "StrPath",
    "read_exr",
    "read_exr_header",
    "read_exr_parts",
    "sha256_file",
    "write_exr",
    "write_exr_parts",
]

StrPath: TypeAlias = str | os.PathLike[str]

#: The first four bytes of every EXR file.
EXR_MAGIC = b"\x76\x2f\x31\x01"

#: Parts whose data window holds more pixels than this are refused before any pixel is read
#: (damaged headers can claim billions of pixels). 16384 x 16384 by default.
DEFAULT_MAX_PIXELS = 16384 * 16384

#: Compression names accepted by :func:`write_exr`, and the OpenEXR constant each one means.
COMPRESSIONS: dict[str, str] = {
    "none": "NO_COMPRESSION",
    "rle": "RLE_COMPRESSION",
    "zips": "ZIPS_COMPRESSION",
    "zip": "ZIP_COMPRESSION",
    "piz": "PIZ_COMPRESSION",
    "pxr24": "PXR24_COMPRESSION",
    "b44": "B44_COMPRESSION",
    "b44a": "B44A_COMPRESSION",
    "dwaa": "DWAA_COMPRESSION",
    "dwab": "DWAB_COMPRESSION",
}
_COMPRESSION_NAMES = {constant: name for name, constant in COMPRESSIONS.items()}

#: Header attributes that describe the file's structure. They are never copied into
#: ``Frame.attributes`` and cannot be set through ``attributes=`` when writing.
_STRUCTURAL = frozenset(
    {
        "channels",
        "chunkCount",
        "compression",
        "dataWindow",
        "displayWindow",
        "lineOrder",
        "maxSamplesPerPixel",
        "name",
        "pixelAspectRatio",
        "screenWindowCenter",
        "screenWindowWidth",
        "tiles",
        "type",
        "version",
    }
)

#: Header attributes that PartInfo reports as fields of their own rather than in ``attributes``.
_PARTINFO_FIELDS = frozenset({"channels", "compression", "dataWindow", "displayWindow", "name", "type"})

_DEEP_STORAGE = frozenset({"deepscanline", "deeptile"})
_RAW_PIXEL_TYPES = {0: "uint", 1: "half", 2: "float"}
_INT32 = (-(2**31), 2**31 - 1)
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class PartInfo:
    """What the header of one part of an EXR file says (no pixels are read)."""

    #: The part's name; "" for an unnamed single-part file.
    name: str
    #: "scanlineimage", "tiledimage", "deepscanline" or "deeptile".
    storage: str
    #: The compression name as :data:`COMPRESSIONS` spells it (e.g. "zip", "piz").
    compression: str
    data_window: Box
    display_window: Box
    #: ``(name, pixel type, x_sampling, y_sampling)`` per channel, pixel type "half"/"float"/"uint".
    channels: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: Every other string- or number-valued header attribute, as text.
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def is_deep(self) -> bool:
        return self.storage in _DEEP_STORAGE


# -- errors -----------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """How an exception from the bindings (or numpy under them) reads in an ExrError message."""
    if isinstance(exc, MemoryError):
        return f"not enough memory to hold it (MemoryError: {_first_line(exc)})"
    if isinstance(exc, UnicodeDecodeError):
        return f"a header text is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, (RuntimeError, ValueError, IndexError, TypeError, OSError)):
        return f"OpenEXR says: {_first_line(exc)}"
    return f"unexpected {type(exc).__name__}: {_first_line(exc)}"


def _fail(verb: str, path: str, reason: str) -> NoReturn:
    raise ExrError(f"cannot {verb} '{path}': {reason}")


@contextlib.contextmanager
def _errors_as_exr(verb: str, path: str) -> Iterator[None]:
    """Turn every exception but ExrError (and interrupts) into an ExrError naming ``path``."""
    try:
        yield
    except ExrError:
        raise
    except Exception as exc:
        raise ExrError(f"cannot {verb} '{path}': {_reason(exc)}") from exc


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or _first_line(exc)


# -- reading ----------------------------------------------------------------------------------


def _check_magic(path: str) -> None:
    """Fail fast, with a plain message, on missing, empty and non-EXR files."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(len(EXR_MAGIC))
    except OSError as exc:
        _fail("read", path, _os_reason(exc))
    if not head:
        _fail("read", path, "the file is empty")
    if head != EXR_MAGIC:
        _fail("read", path, "not an EXR file (it does not start with the EXR magic number)")


def _open(path: str, *, header_only: bool) -> Any:
    """``OpenEXR.File`` for ``path``; refuses files the bindings return with no parts."""
    exr = OpenEXR.File(path, separate_channels=True, header_only=header_only)
    if not exr.parts:
        _fail("read", path, "OpenEXR found no readable part in it (damaged or truncated file)")
    return exr


def _box(value: Any) -> Box:
    low, high = value
    return Box(int(low[0]), int(low[1]), int(high[0]), int(high[1]))


def _part_label(index: int, name: str) -> str:
    return f"part {index} '{name}'" if name else f"part {index}"


def _part_list(names: Sequence[str]) -> str:
    return ", ".join(f"{index}: '{name}'" if name else f"{index}: (unnamed)" for index, name in enumerate(names))


def _select_part(path: str, names: Sequence[str], part: str | int | None) -> int:
    if part is None:
        return 0
    if isinstance(part, str):
        if part in names:
            return names.index(part)
        _fail("read", path, f"it has no part named '{part}'; its parts are {_part_list(names)}")
    if isinstance(part, int) and not isinstance(part, bool) and 0 <= part < len(names):
        return part
    _fail("read", path, f"part index {part!r} is out of range; its parts are {_part_list(names)}")


def _check_part_header(path: str, index: int, header_part: Any, max_pixels: int) -> None:
    """Refuse a part's header before any pixel memory is allocated for it."""
    label = _part_label(index, str(header_part.name()))
    window = _box(header_part.header["dataWindow"])
    if window.width <= 0 or window.height <= 0:
        _fail("read", path, f"{label} has an empty data window {window}")
    pixels = window.width * window.height
    if pixels > max_pixels:
        _fail(
            "read",
            path,
            f"{label} data window {window} holds {pixels} pixels, more than the limit of {max_pixels} "
            "(a damaged header? raise max_pixels if the image really is that large)",
        )


def _string_attributes(header: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v for k, v in header.items() if isinstance(v, str) and k not in _STRUCTURAL}


def _frame_from_part(path: str, label: str, decoded: Any) -> Frame:
    header = decoded.header
    data_window = _box(header["dataWindow"])
    display_window = _box(header["displayWindow"])
    channels: dict[str, np.ndarray] = {}
    sampling: dict[str, tuple[int, int]] = {}
    for name, channel in decoded.channels.items():
        pixels = channel.pixels
        if pixels is None or not isinstance(pixels, np.ndarray):
            _fail("read", path, f"{label} channel '{name}' came back without pixel data")
        if pixels.dtype not in PIXEL_DTYPES.values():
            _fail("read", path, f"{label} channel '{name}' has unexpected pixel type {pixels.dtype}")
        if pixels.ndim != 2:
            _fail("read", path, f"{label} channel '{name}' came back with shape {pixels.shape}, not 2-D")
        channels[str(name)] = np.ascontiguousarray(pixels)
        xs, ys = int(channel.xSampling), int(channel.ySampling)
        if (xs, ys) != (1, 1):
            sampling[str(name)] = (xs, ys)
    if not channels:
        _fail("read", path, f"{label} has no channels")
    try:
        return Frame(
            channels,
            data_window,
            display_window,
            attributes=_string_attributes(header),
            sampling=sampling,
            pixel_aspect=float(header.get("pixelAspectRatio", 1.0)),
        )
    except Exception as exc:  # FrameError, or arithmetic on absurd windows
        _fail("read", path, f"{label} does not make a valid frame: {_first_line(exc)}")


def _read_parts(path: str, part: str | int | None, max_pixels: int, *, every: bool) -> list[tuple[str, Frame]]:
    """The chosen part (or, with ``every``, all parts) of ``path`` as ``(name, frame)`` pairs."""
    _check_magic(path)
    with _errors_as_exr("read", path):
        headers = _open(path, header_only=True).parts
        names = [str(p.name()) for p in headers]
        wanted = list(range(len(names))) if every else [_select_part(path, names, part)]
        for index in wanted:
            if str(headers[index].type().name) in _DEEP_STORAGE:
                _fail("read", path, f"{_part_label(index, names[index])}: deep data is not supported")
        # The bindings decode every part of the file, so every part must pass the size check.
        for index, header_part in enumerate(headers):
            _check_part_header(path, index, header_part, max_pixels)

        decoded_parts = _open(path, header_only=False).parts
        frames: list[tuple[str, Frame]] = []
        for index in wanted:
            label = _part_label(index, names[index])
            if len(decoded_parts) == len(headers):
                decoded = decoded_parts[index]
            else:
                # The bindings skip (and only print a warning for) parts they cannot decode;
                # multipart names are unique, so an intact part can still be found by name.
                matches = [p for p in decoded_parts if names[index] and str(p.name()) == names[index]]
                if len(matches) != 1 or names.count(names[index]) != 1:
                    _fail("read", path, f"OpenEXR could not decode the pixel data of {label} (damaged or truncated)")
                decoded = matches[0]
            frames.append((names[index], _frame_from_part(path, label, decoded)))
        return frames


def read_exr(path: StrPath, *, part: str | int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Frame:
    """Every channel of one part of an EXR file, as a :class:`Frame`.

    ``part`` picks the part by name or index (default: the first). Pixel types are kept as
    stored; subsampled channels keep their stored shape and get an entry in ``Frame.sampling``;
    non-structural string header attributes land in ``Frame.attributes``. ``frame_number`` is
    left ``None``: the caller knows which frame it asked for. Tiled multi-resolution files give
    their full-resolution level.

    Raises :class:`ExrError` naming the file for every failure: missing, empty or non-EXR
    files, damaged data, deep parts (not supported), parts larger than ``max_pixels``.
    """
    ((_, frame),) = _read_parts(os.fspath(path), part, max_pixels, every=False)
    return frame


def read_exr_parts(path: StrPath, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[str, Frame]]:
    """Every part of an EXR file as ``(part name, frame)``, decoding the file once.

    The counterpart of :func:`write_exr_parts`; an unnamed single part has the name "".
    Fails as :func:`read_exr` does, and on a deep or undecodable part anywhere in the file.
    """
    return _read_parts(os.fspath(path), None, max_pixels, every=True)


class _HeaderReader:
    """Just enough of the EXR header layout to find each part's channel pixel types."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise ValueError("header ends early")
        return data

    def text(self, limit: int = 256) -> bytes:
        out = bytearray()
        while True:
            byte = self.exact(1)
            if byte == b"\0":
                return bytes(out)
            out += byte
            if len(out) > limit:
                raise ValueError("header name too long")

    def int32(self) -> int:
        value: int = struct.unpack("<i", self.exact(4))[0]
        return value


def _parse_chlist(data: bytes) -> dict[str, str]:
    types: dict[str, str] = {}
    pos = 0
    while True:
        end = data.find(b"\0", pos)
        if end < 0:
            raise ValueError("the channel list is not terminated")
        if end == pos:
            return types
        channel = data[pos:end].decode("utf-8", errors="replace")
        pixel_type = struct.unpack_from("<i", data, end + 1)[0]
        if pixel_type not in _RAW_PIXEL_TYPES:
            raise ValueError(f"channel '{channel}' has unknown pixel type {pixel_type}")
        types[channel] = _RAW_PIXEL_TYPES[pixel_type]
        pos = end + 1 + 16  # pixel type, pLinear, 3 reserved bytes, x and y sampling


def _raw_channel_types(path: str) -> list[dict[str, str]]:
    """Per part, channel name -> pixel type, read from the file's own channel lists."""
    with open(path, "rb") as stream:
        reader = _HeaderReader(stream)
        if reader.exact(4) != EXR_MAGIC:
            raise ValueError("not an EXR file")
        multipart = bool(reader.int32() & 0x1000)
        parts: list[dict[str, str]] = []
        while True:
            types: dict[str, str] | None = None
            attributes = 0
            while attr_name := reader.text():
                attr_type = reader.text()
                size = reader.int32()
                if size < 0:
                    raise ValueError(f"attribute '{attr_name!r}' has negative size")
                if attr_name == b"channels" and attr_type == b"chlist":
                    types = _parse_chlist(reader.exact(size))
                else:
                    stream.seek(size, os.SEEK_CUR)
                attributes += 1
            if attributes == 0:  # the empty header that ends a multipart header list
                return parts
            if types is None:
                raise ValueError(f"part {len(parts)} has no channel list")
            parts.append(types)
            if not multipart:
                return parts


def _number_or_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    return None


def read_exr_header(path: StrPath) -> list[PartInfo]:
    """One :class:`PartInfo` per part, from the headers alone (no pixel data is decoded).

    Deep parts are described, not refused. Raises :class:`ExrError` naming the file when the
    file is missing, not an EXR or has a damaged header.
    """
    name = os.fspath(path)
    _check_magic(name)
    with _errors_as_exr("read", name):
        headers = _open(name, header_only=True).parts
        try:
            raw_types = _raw_channel_types(name)
        except (OSError, ValueError, struct.error) as exc:
            _fail("read", name, f"its header is damaged (channel list unreadable: {_first_line(exc)})")
        if len(raw_types) != len(headers):
            _fail("read", name, f"OpenEXR sees {len(headers)} part(s) but the header lists {len(raw_types)}")
        infos: list[PartInfo] = []
        for index, (part, types) in enumerate(zip(headers, raw_types, strict=True)):
            header = part.header
            channels: list[tuple[str, str, int, int]] = []
            for channel in header["channels"]:
                channel_name = str(channel.name)
                if channel_name not in types:
                    _fail("read", name, f"{_part_label(index, str(part.name()))} channel '{channel_name}' has no type")
                channels.append((channel_name, types[channel_name], int(channel.xSampling), int(channel.ySampling)))
            compression = str(part.compression().name)
            attributes = {
                str(key): text
                for key, value in header.items()
                if key not in _PARTINFO_FIELDS and (text := _number_or_text(value)) is not None
            }
            infos.append(
                PartInfo(
                    name=str(part.name()),
                    storage=str(part.type().name),
                    compression=_COMPRESSION_NAMES.get(compression, compression.removesuffix("_COMPRESSION").lower()),
                    data_window=_box(header["dataWindow"]),
                    display_window=_box(header["displayWindow"]),
                    channels=channels,
                    attributes=attributes,
                )
            )
        return infos


# -- writing ----------------------------------------------------------------------------------


def _compression_constant(path: str, compression: str) -> Any:
    key = compression.lower() if isinstance(compression, str) else compression
    if key not in COMPRESSIONS:
        _fail("write", path, f"unknown compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")
    return getattr(OpenEXR, COMPRESSIONS[key])


def _window(path: str, what: str, box: Box) -> tuple[np.ndarray, np.ndarray]:
    values = (box.min_x, box.min_y, box.max_x, box.max_y)
    if not all(_INT32[0] <= int(v) <= _INT32[1] for v in values):
        _fail("write", path, f"{what} {box} does not fit EXR's 32-bit coordinates")
    return (
        np.array([box.min_x, box.min_y], dtype=np.int32),
        np.array([box.max_x, box.max_y], dtype=np.int32),
    )


def _checked_attributes(path: str, label: str, attributes: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            _fail("write", path, f"{label}: attribute names must be non-empty strings, not {key!r}")
        if key in _STRUCTURAL:
            _fail("write", path, f"{label}: attribute '{key}' is part of the file's structure and cannot be set")
        if not isinstance(value, str):
            _fail("write", path, f"{label}: attribute '{key}' must be a string, not {type(value).__name__}")
        out[key] = value
    return out


@dataclass
class _PreparedPart:
    header: dict[str, Any]
    channels: dict[str, Any]
    name: str
    #: Subsampled channels as the frame holds them, to compare with what was written.
    subsampled: dict[str, np.ndarray]


def _prepare_part(
    path: str,
    label: str,
    frame: Frame,
    name: str,
    compression: Any,
    attributes: Mapping[str, str] | None,
) -> _PreparedPart:
    if not frame.channels:
        _fail("write", path, f"{label} has no channels; an EXR needs at least one")
    header: dict[str, Any] = _checked_attributes(path, label, frame.attributes)
    header.update(_checked_attributes(path, label, attributes or {}))
    header["compression"] = compression
    header["type"] = OpenEXR.scanlineimage
    header["dataWindow"] = _window(path, "data window", frame.data_window)
    header["displayWindow"] = _window(path, "display window", frame.display_window)
    header["pixelAspectRatio"] = float(frame.pixel_aspect)
    full_shape = (frame.height, frame.width)
    channels: dict[str, Any] = {}
    subsampled: dict[str, np.ndarray] = {}
    for channel_name, pixels in frame.channels.items():
        if not isinstance(channel_name, str) or not channel_name:
            _fail("write", path, f"{label}: channel names must be non-empty strings, not {channel_name!r}")
        if not isinstance(pixels, np.ndarray):
            _fail("write", path, f"{label} channel '{channel_name}' is a {type(pixels).__name__}, not a numpy array")
        try:
            pixel_type = pixel_type_of(pixels)
        except Exception as exc:
            _fail("write", path, f"{label} channel '{channel_name}': {_first_line(exc)}")
        xs, ys = frame.sampling.get(channel_name, (1, 1))
        if not (isinstance(xs, int) and isinstance(ys, int) and xs >= 1 and ys >= 1):
            _fail("write", path, f"{label} channel '{channel_name}' has invalid sampling {(xs, ys)!r}")
        expected = (frame.height // ys, frame.width // xs)
        if pixels.shape != expected:
            _fail(
                "write",
                path,
                f"{label} channel '{channel_name}' has shape {pixels.shape}; "
                f"the data window {frame.data_window} with sampling {(xs, ys)} needs {expected}",
            )
        stored = np.ascontiguousarray(pixels, dtype=PIXEL_DTYPES[pixel_type])
        if (xs, ys) != (1, 1):
            # The bindings insist that every channel array has the same shape, while the C++
            # library reads a subsampled channel as a compact (h/ys, w/xs) block at the start
            # of the buffer. So: the compact block inside a full-size array.
            subsampled[channel_name] = stored
            padded = np.zeros(full_shape, dtype=stored.dtype)
            padded.reshape(-1)[: stored.size] = stored.reshape(-1)
            stored = padded
        channels[channel_name] = OpenEXR.Channel(stored, xs, ys)
    return _PreparedPart(header, channels, name, subsampled)


def _verify_subsampled(path: str, written: str, prepared: Sequence[_PreparedPart]) -> None:
    """Read back subsampled channels: their write goes through a layout workaround."""
    if not any(p.subsampled for p in prepared):
        return
    parts = OpenEXR.File(written, separate_channels=True).parts
    if len(parts) != len(prepared):
        _fail("write", path, "the written file could not be read back to check its subsampled channels")
    for part, expected in zip(parts, prepared, strict=True):
        for channel_name, pixels in expected.subsampled.items():
            got = part.channels[channel_name].pixels
            if (
                not isinstance(got, np.ndarray)
                or got.shape != pixels.shape
                or got.dtype != pixels.dtype
                or got.tobytes() != pixels.tobytes()
            ):
                _fail("write", path, f"subsampled channel '{channel_name}' did not survive writing")


def _write_parts(
    path: StrPath,
    entries: Sequence[tuple[str, Frame, Mapping[str, str] | None]],
    compression: str,
    *,
    multipart: bool,
) -> None:
    name = os.fspath(path)
    if not entries:
        _fail("write", name, "there are no parts to write")
    with _errors_as_exr("write", name):
        constant = _compression_constant(name, compression)
        seen: set[str] = set()
        prepared: list[_PreparedPart] = []
        for index, (part_name, frame, attributes) in enumerate(entries):
            label = _part_label(index, part_name) if multipart else "the frame"
            if not isinstance(frame, Frame):
                _fail("write", name, f"{label} is a {type(frame).__name__}, not a Frame")
            if multipart:
                if not isinstance(part_name, str) or not part_name:
                    _fail("write", name, f"part {index} needs a non-empty name in a multipart file")
                if part_name in seen:
                    _fail("write", name, f"part name '{part_name}' is used twice; part names must be unique")
                seen.add(part_name)
            prepared.append(_prepare_part(name, label, frame, part_name, constant, attributes))
        display_windows = {frame.display_window for _, frame, _ in entries}
        if len(display_windows) > 1:
            listed = ", ".join(f"'{part_name}' {frame.display_window}" for part_name, frame, _ in entries)
            _fail("write", name, f"the parts of a multipart file must share one display window; they have {listed}")

        target = os.path.abspath(name)
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            _fail("write", name, f"the folder '{directory}' does not exist")
        if os.path.isdir(target):
            _fail("write", name, "it is a directory")
        temp = ""
        try:
            with atomic.atomic_path(target, durable=True) as staged:
                temp = os.fspath(staged)
                parts = [OpenEXR.Part(p.header, p.channels, p.name) for p in prepared]
                OpenEXR.File(parts).write(temp)
                _verify_subsampled(name, temp, prepared)
        except BaseException as exc:
            if isinstance(exc, Exception) and not isinstance(exc, ExrError):
                # The bindings name the file they were given: name the destination instead.
                reason = _reason(exc)
                if temp:
                    reason = reason.replace(temp, name).replace(os.path.basename(temp), os.path.basename(name))
                raise ExrError(f"cannot write '{name}': {reason}") from exc
            raise


def write_exr(
    path: StrPath,
    frame: Frame,
    *,
    compression: str = "zip",
    attributes: Mapping[str, str] | None = None,
    part_name: str | None = None,
) -> None:
    """Write ``frame`` as a single-part scanline EXR, atomically.

    Every channel keeps its pixel type and sampling; the data and display windows are written
    as they are; ``frame.attributes`` and then ``attributes`` become string header attributes
    (structural names such as "compression" are refused). ``compression`` is one of
    :data:`COMPRESSIONS`. ``part_name`` sets the part's "name" attribute.

    The file appears at ``path`` complete or not at all; on any failure the temporary file is
    removed, an existing file at ``path`` is left untouched, and :class:`ExrError` is raised.
    """
    _write_parts(path, [(part_name or "", frame, attributes)], compression, multipart=False)


def write_exr_parts(
    path: StrPath,
    parts: Sequence[tuple[str, Frame]],
    *,
    compression: str = "zip",
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Write ``(name, frame)`` pairs as the parts of one multipart EXR, atomically.

    Names must be unique and non-empty. ``attributes`` are added to every part. Otherwise as
    :func:`write_exr`.
    """
    entries = [(part_name, frame, attributes) for part_name, frame in parts]
    _write_parts(path, entries, compression, multipart=True)


# -- provenance -------------------------------------------------------------------------------


def sha256_file(path: StrPath) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB chunks (for source provenance)."""
    name = os.fspath(path)
    digest = hashlib.sha256()
    try:
        with open(name, "rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        _fail("hash", name, _os_reason(exc))
    return digest.hexdigest()
