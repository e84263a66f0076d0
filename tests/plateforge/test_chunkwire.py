"""The hand-written chunk encoding is protobuf's wire format, both ways."""

from __future__ import annotations

import pytest

from plateforge.chunkwire import decode_chunk, encode_chunk
from plateforge.v1 import inference_pb2

CASES = [
    pytest.param((0, 0, 0, 0, b""), id="all-zero-empty"),
    pytest.param((0, 0, 0, 0, b"\x00\x01"), id="zeros-left-out"),
    pytest.param((3, 2, 7, 2 * 1024 * 1024, bytes(range(256)) * 64), id="typical"),
    pytest.param((127, 128, 16383, 16384, b"x"), id="varint-boundaries"),
    pytest.param((2**32 - 1, 2**32 - 1, 2**32 - 1, 2**64 - 1, b"y" * 300), id="largest"),
]


@pytest.mark.parametrize("fields", CASES)
@pytest.mark.parametrize("message_type", [inference_pb2.ProcessStreamRequest, inference_pb2.ProcessStreamResponse])
def test_encoding_is_protobufs(fields: tuple[int, int, int, int, bytes], message_type: type) -> None:
    image, frame, channel, offset, data = fields
    ours = encode_chunk(image, frame, channel, offset, memoryview(data))
    theirs = message_type(
        chunk=inference_pb2.DataChunk(
            image_index=image, frame_index=frame, channel_index=channel, offset=offset, data=data
        )
    )
    assert ours == theirs.SerializeToString(deterministic=True)
    assert message_type.FromString(ours) == theirs
    decoded = decode_chunk(theirs.SerializeToString())
    assert decoded is not None
    assert decoded[:4] == (image, frame, channel, offset) and bytes(decoded[4]) == data


def test_headers_and_other_layouts_are_left_to_protobuf() -> None:
    header = inference_pb2.ProcessStreamRequest(header=inference_pb2.ProcessRequest(model="m")).SerializeToString()
    assert decode_chunk(header) is None
    # Fields in another order, or repeated, are valid protobuf the fast path declines.
    chunk = inference_pb2.DataChunk(image_index=1, data=b"ab").SerializeToString()
    reordered = b"\x2a\x02ab\x08\x01"
    assert inference_pb2.DataChunk.FromString(reordered) == inference_pb2.DataChunk.FromString(chunk)
    decoded = decode_chunk(b"\x12" + bytes([len(reordered)]) + reordered)
    assert decoded is not None and decoded[0] == 1 and bytes(decoded[4]) == b"ab"
    with_unknown_field = b"\x12\x04\x08\x01\x30\x05"  # field 6 is not DataChunk's
    assert decode_chunk(with_unknown_field) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x12", id="tag-only"),
        pytest.param(b"\x12\x05\x2a\x10ab", id="data-runs-past-end"),
        pytest.param(b"\x12\x02\x08\xff", id="truncated-varint"),
        pytest.param(b"\x12\x0b" + b"\x08" + b"\xff" * 10, id="overlong-varint"),
    ],
)
def test_malformed_is_declined_not_misread(raw: bytes) -> None:
    assert decode_chunk(raw) is None
