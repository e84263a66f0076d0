"""Hypothesis strategies for plateforge's wire messages: any message from its descriptor (for the
RPC fuzz), and frames and Process requests near the valid ones (so the fuzz reaches the checks
behind the first refusal)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from plateforge.frames import Box, Frame
from plateforge.v1 import frame_pb2, inference_pb2, models_pb2, training_pb2

#: Strings a hostile or confused caller would try, mixed into random text.
NASTY_TEXT = (
    "",
    "passthrough",
    "cleanup-classical",
    "plate",
    "mask",
    "../../../../etc/passwd",
    "/etc/passwd",
    "/dev/zero",
    "/proc/self/mem",
    "plateforge-x",
    "plateforge-../../x",
    "\x00",
    "{}",
    '{"steps": -1}',
    "a" * 300,
)

_F = FieldDescriptor
_INTS: dict[int, st.SearchStrategy[int]] = {
    _F.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    _F.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: st.integers(0, 2**32 - 1),
    _F.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    _F.TYPE_UINT64: st.integers(0, 2**64 - 1),
    _F.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}


def _small_or(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-3, 70), strategy)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INTS:
        low = 0 if kind in (_F.TYPE_UINT32, _F.TYPE_FIXED32, _F.TYPE_UINT64, _F.TYPE_FIXED64) else None
        small = st.integers(0, 70) if low == 0 else st.integers(-3, 70)
        return st.one_of(small, _INTS[kind])
    if kind == _F.TYPE_STRING:
        return st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=24))
    if kind == _F.TYPE_BYTES:
        return st.binary(max_size=96)
    if kind == _F.TYPE_BOOL:
        return st.booleans()
    if kind == _F.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == _F.TYPE_FLOAT:
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == _F.TYPE_ENUM:
        return st.integers(-2, 12)  # proto3 enums are open: unknown numbers arrive as they are
    raise AssertionError(f"no strategy for field type {kind} ({field.full_name})")


def messages(descriptor: Descriptor, depth: int = 3) -> st.SearchStrategy[Message]:
    """Any message of ``descriptor``'s type: each field set or not, values anywhere in their type's
    range (and strings a hostile caller would send), nested messages down to ``depth`` levels."""
    cls = message_factory.GetMessageClass(descriptor)
    values: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.type == _F.TYPE_MESSAGE and not is_map:
            if depth <= 0:
                continue
            inner = messages(field.message_type, depth - 1)
            values[field.name] = st.lists(inner, max_size=3) if _repeated(field) else inner
        elif is_map:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            value = (
                messages(value_field.message_type, depth - 1)
                if value_field.type == _F.TYPE_MESSAGE and depth > 0
                else _scalar(value_field)
                if value_field.type != _F.TYPE_MESSAGE
                else st.nothing()
            )
            values[field.name] = st.dictionaries(_scalar(key_field), value, max_size=3)
        else:
            scalar = _scalar(field)
            values[field.name] = st.lists(scalar, max_size=4) if _repeated(field) else scalar

    def build(chosen: dict[str, Any]) -> Message:
        message = cls()
        for name, value in chosen.items():
            target = getattr(message, name) if hasattr(message, name) else None
            field = descriptor.fields_by_name[name]
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif _repeated(field):
                if field.type == _F.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            elif field.type == _F.TYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=values).map(build)


def _repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):  # protobuf 6 and later
        return bool(field.is_repeated)
    return bool(field.label == _F.LABEL_REPEATED)


# -- frames and requests near the valid ones --------------------------------------------------------
#
# A valid frame or request, then a few (often zero) of the mistakes below: hypothesis keeps the list
# short and shrinks a failure to the fewest mistakes that cause it.

_BYTES_PER_SAMPLE = {frame_pb2.PIXEL_TYPE_HALF: 2, frame_pb2.PIXEL_TYPE_FLOAT: 4, frame_pb2.PIXEL_TYPE_UINT: 4}
FRAME_MISTAKES = (
    "huge_window",
    "inverted_window",
    "empty_display",
    "far_origin",
    "bad_aspect",
    "bad_pixel_type",
    "bad_sampling",
    "subsampled",
    "short_data",
    "long_data",
    "duplicate_name",
    "empty_name",
    "no_channels",
    "shm_reference",
    "non_finite",
)
REQUEST_MISTAKES = (
    "unknown_model",
    "bad_version",
    "no_inputs",
    "unknown_input",
    "duplicate_input",
    "too_many_frames",
    "same_frame_numbers",
    "cleanup_with_mask",
    "cleanup_without_mask",
    "unknown_param",
    "bad_param",
    "empty_param",
    "target_elsewhere",
    "windows_differ",
)


@st.composite
def frames(draw: st.DrawFn, *, with_data: bool = True, number: int | None = 1001) -> frame_pb2.Frame:
    """A Frame message: valid, or wrong in one or two ways at a time."""
    mistakes = set(draw(st.lists(st.sampled_from(FRAME_MISTAKES), max_size=2)))
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x, y = draw(st.integers(-5, 5)), draw(st.integers(-5, 5))
    if "far_origin" in mistakes:
        x = 2**31 - 10
    box = frame_pb2.Box2i(min_x=x, min_y=y, max_x=x + width - 1, max_y=y + height - 1)
    if "huge_window" in mistakes:
        box.max_x, box.max_y = 2**31 - 1, 2**31 - 1
    if "inverted_window" in mistakes:
        box.max_x = x - 2
    display = frame_pb2.Box2i() if "empty_display" not in mistakes else frame_pb2.Box2i(min_x=5, max_x=1)
    msg = frame_pb2.Frame(data_window=box, display_window=display if "empty_display" in mistakes else box)
    if number is not None:
        msg.frame_number = number
    msg.pixel_aspect = draw(st.sampled_from([-1.0, float("nan"), float("inf")])) if "bad_aspect" in mistakes else 1.0
    names = [] if "no_channels" in mistakes else ["R", "G", "B", "A"][: draw(st.integers(1, 4))]
    if "duplicate_name" in mistakes and names:
        names.append(names[0])
    if "empty_name" in mistakes:
        names.append("")
    for k, name in enumerate(names):
        pixel_type = draw(st.sampled_from([1, 2, 3]))
        if "bad_pixel_type" in mistakes and k == 0:
            pixel_type = draw(st.sampled_from([0, 7, -1]))
        xs, ys = 1, 1
        if "bad_sampling" in mistakes and k == 0:
            xs, ys = draw(st.sampled_from([(-1, 1), (1, -2), (0, -1)]))
        elif "subsampled" in mistakes and k == 0:
            xs, ys = 2, 2
        per = _BYTES_PER_SAMPLE.get(pixel_type, 2)
        rows = height // ys if ys > 0 else 0
        cols = width // xs if xs > 0 else 0
        size = rows * cols * per
        size += {"short_data": -1, "long_data": 3}.get(next(iter(mistakes & {"short_data", "long_data"}), ""), 0)
        size = max(size, 0)
        data = draw(st.binary(min_size=size, max_size=size)) if with_data else b""
        if data and pixel_type == 1 and "non_finite" not in mistakes:
            data = bytes(b & 0x3F if i % 2 else b for i, b in enumerate(data))  # clear the exponent's top bits
        elif data and pixel_type == 2 and "non_finite" not in mistakes:
            data = bytes(b & 0x3F if i % 4 == 3 else b for i, b in enumerate(data))
        elif data and "non_finite" in mistakes and pixel_type in (1, 2):
            data = b"\xff" * len(data)
        msg.channels.add(name=name, pixel_type=pixel_type, x_sampling=xs, y_sampling=ys, data=data, byte_size=size)
    if "shm_reference" in mistakes:
        msg.shm_region = draw(st.sampled_from(["plateforge-nope", "x", "../etc"]))
        msg.shm_offset = draw(st.integers(0, 2**64 - 1))
    return msg


@st.composite
def process_requests(draw: st.DrawFn, *, with_data: bool = True) -> inference_pb2.ProcessRequest:
    """A ProcessRequest for passthrough or cleanup-classical: valid, or wrong in a few ways."""
    mistakes = set(draw(st.lists(st.sampled_from(REQUEST_MISTAKES), max_size=2)))
    cleanup = bool(mistakes & {"cleanup_with_mask", "cleanup_without_mask"})
    request = inference_pb2.ProcessRequest(
        model="cleanup-classical" if cleanup else "passthrough",
        sanitize_non_finite=draw(st.booleans()),
    )
    if "unknown_model" in mistakes:
        request.model = draw(st.sampled_from(["nope", "", "../passthrough", "passthrough\x00"]))
    if "bad_version" in mistakes:
        request.version = draw(st.sampled_from(["999", "../1", "\x00"]))
    plate = draw(frames(with_data=with_data))
    inputs: list[tuple[str, list[frame_pb2.Frame]]] = [] if "no_inputs" in mistakes else [("plate", [plate])]
    if "too_many_frames" in mistakes or "same_frame_numbers" in mistakes:
        extra = frame_pb2.Frame()
        extra.CopyFrom(plate)
        if "too_many_frames" in mistakes:
            extra.frame_number = 1002
        inputs = [("plate", [plate, extra])]
    if "cleanup_with_mask" in mistakes:
        mask = frame_pb2.Frame()
        mask.CopyFrom(plate)
        if "windows_differ" in mistakes:
            mask.data_window.max_x += 1
        inputs.append(("mask", [mask]))
    if "unknown_input" in mistakes:
        inputs.append(("matte", [plate]))
    if "duplicate_input" in mistakes:
        inputs.append(("plate", [plate]))
    for name, given in inputs:
        entry = request.inputs.add(name=name)
        for frame in given:
            entry.frames.add().CopyFrom(frame)
    if "unknown_param" in mistakes:
        request.params["gain"].number = 2.0
    if "bad_param" in mistakes:
        request.params["inpaint_radius"].CopyFrom(
            draw(st.sampled_from([models_pb2.ParamValue(number=float("nan")), models_pb2.ParamValue(text="x")]))
        )
    if "empty_param" in mistakes:
        request.params["align"].CopyFrom(models_pb2.ParamValue())
    if "target_elsewhere" in mistakes:
        request.target_frame = draw(st.sampled_from([7, -(2**63), 2**63 - 1]))
    return request


# -- ProcessStream chunk sequences ---------------------------------------------------------------------
#
# A frame, and the chunks a sender cuts its channels into: a valid cut (every byte once, in any
# order), then a few of the mistakes below. The test's oracle counts how often each byte is sent.

STREAM_MISTAKES = ("repeat", "overlap", "drop", "shuffle", "shrink", "garbage_repeat")

#: One chunk: channel index, first byte, end byte (exclusive), and whether its bytes are garbage.
ChunkPlan = tuple[int, int, int, bool]


@st.composite
def stream_frames(draw: st.DrawFn) -> Frame:
    """A small finite frame of 1-4 half or float channels, any of them 1x1 to 9x7."""
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    names = ["R", "G", "B", "A"][: draw(st.integers(1, 4))]
    channels = {
        name: rng.random((height, width), dtype=np.float32).astype(draw(st.sampled_from([np.float16, np.float32])))
        for name in names
    }
    box = Box(0, 0, width - 1, height - 1)
    return Frame(channels=channels, data_window=box, display_window=box, frame_number=1001)


@st.composite
def chunk_plans(draw: st.DrawFn, sizes: list[int]) -> list[ChunkPlan]:
    """Chunks for channels of ``sizes`` bytes: a valid cut, shuffled or not, then up to three
    mistakes (a chunk sent again, two chunks that overlap, one missing, one cut short)."""
    plan: list[ChunkPlan] = []
    for channel, size in enumerate(sizes):
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, size - 1)), max_size=4))) - {size})
        edges = [0, *cuts, size]
        plan += [(channel, a, b, False) for a, b in itertools.pairwise(edges) if b > a]
    for mistake in draw(st.lists(st.sampled_from(STREAM_MISTAKES), max_size=3)):
        if not plan:
            break
        k = draw(st.integers(0, len(plan) - 1))
        channel, start, end, garbage = plan[k]
        if mistake in ("repeat", "garbage_repeat"):
            plan.insert(draw(st.integers(0, len(plan))), (channel, start, end, mistake == "garbage_repeat"))
        elif mistake == "overlap" and end - start > 1:
            # Grow one chunk into its neighbour's bytes (or out of the channel's start).
            plan[k] = (channel, max(0, start - draw(st.integers(1, 3))), end, garbage)
            plan.append((channel, start + 1, end, garbage))
        elif mistake == "drop":
            del plan[k]
        elif mistake == "shrink" and end - start > 1:
            plan[k] = (channel, start, end - 1, garbage)
        elif mistake == "shuffle":
            plan = draw(st.permutations(plan))
    if draw(st.booleans()):
        plan = draw(st.permutations(plan))
    return plan


# -- training configs ---------------------------------------------------------------------------------
#
# StartTraining's config: TrainConfig fields (and a few unknown ones) with values inside, at and far
# outside their bounds, of the wrong type, huge, NaN, nested; sent as config_json or as params.

_CONFIG_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.integers(-3, 70),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 16, 64, 65, 1024, 1025, 2**31, 2**32, 2**63, 10**30, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e30, 1e8, -0.0, 0.5, 2.5, 1e-9, 1e300]),
    st.booleans(),
    st.none(),
    st.text(max_size=24),
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(["pairs", "inpaint", "cleanup", "matte", "lora", "small", "large", "auto", "off", "R,G,B,N.x"]),
    st.just("x" * 5000),
    st.lists(st.sampled_from(["R", "G", "B", "N.x", "", "\x00"]), max_size=40),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@st.composite
def start_training_requests(draw: st.DrawFn, *, dataset: str, fields: tuple[str, ...]) -> Message:
    """A StartTrainingRequest for ``dataset`` whose config sets some of ``fields`` (TrainConfig's)
    and perhaps an unknown one, to anything: in ``config_json`` (JSON with NaN and huge numbers,
    or not JSON at all) or in ``params`` (the values a ParamValue can carry)."""
    names = st.sampled_from([*fields, "stepz", "schema"])
    config = draw(st.dictionaries(names, _CONFIG_VALUES, max_size=6))
    request = training_pb2.StartTrainingRequest(dataset=dataset, tool=draw(st.sampled_from(["look", "cleanup", "x"])))
    how = draw(st.sampled_from(["json", "params", "broken-json"]))
    if how == "json":
        request.config_json = json.dumps(config)
    elif how == "broken-json":
        request.config_json = draw(st.sampled_from(["[" * 5000, "{", '{"steps": 1e999}', "null", '"x"', "1" * 5000]))
    else:
        for key, value in config.items():
            if isinstance(value, bool):
                request.params[key].boolean = value
            elif isinstance(value, (int, float)):
                request.params[key].number = float(value)
            elif isinstance(value, str):
                request.params[key].text = value
    return request
