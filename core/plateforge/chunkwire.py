"""The DataChunk messages of ProcessStream, encoded and decoded without protobuf's copies.

A 4K half frame crosses ProcessStream as ~35 messages of 2 MiB, each a
``ProcessStream{Request,Response}`` holding one ``DataChunk``. Through protobuf's Python API
each chunk's samples are copied four or five times (numpy -> bytes -> message field ->
serialised message, and back: parsed message -> field read -> numpy). Here a chunk message is
written in one join and read as a memoryview into the received bytes, so the samples are
copied once each way. The bytes are exactly protobuf's wire format for those messages
(tests/plateforge/test_chunkwire.py proves it against protobuf both ways), so any gRPC client in any
language still talks to the server; headers, and anything this fast path does not recognise,
go through protobuf as usual.
"""

from __future__ import annotations

__all__ = ["Chunk", "decode_chunk", "encode_chunk"]

# Wire layout: field 2 (the `chunk` member of the oneof), length-delimited, holding DataChunk
# {1: image_index, 2: frame_index, 3: channel_index, 4: offset (varints), 5: data (bytes)}.
_CHUNK_TAG = b"\x12"
_DATA_TAG = b"\x2a"

Chunk = tuple[int, int, int, int, memoryview]  # image_index, frame_index, channel_index, offset, data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_chunk(image_index: int, frame_index: int, channel_index: int, offset: int, data: memoryview) -> bytes:
    """One serialised ProcessStream message holding one DataChunk; ``data`` is copied once."""
    head = bytearray()
    for field, value in ((1, image_index), (2, frame_index), (3, channel_index), (4, offset)):
        if value:  # proto3 leaves zero scalars out
            head += _varint(field << 3) + _varint(value)
    if data.nbytes:
        head += _DATA_TAG + _varint(data.nbytes)
    return b"".join((_CHUNK_TAG, _varint(len(head) + data.nbytes), head, data))


def _read_varint(raw: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("malformed varint")


def decode_chunk(raw: bytes) -> Chunk | None:
    """The DataChunk in a serialised ProcessStream message, or None if it holds anything else
    (a header, or a layout this fast path does not handle: parse it with protobuf then)."""
    end = len(raw)
    if end < 2 or raw[0] != 0x12:
        return None
    try:
        length, pos = _read_varint(raw, 1, end)
        if pos + length != end:
            return None
        fields = [0, 0, 0, 0, 0]
        data: memoryview | None = None
        while pos < end:
            key, pos = _read_varint(raw, pos, end)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0 and 1 <= number <= 4:
                fields[number], pos = _read_varint(raw, pos, end)
            elif wire_type == 2 and number == 5:
                size, pos = _read_varint(raw, pos, end)
                if pos + size > end:
                    return None
                data = memoryview(raw)[pos : pos + size]
                pos += size
            else:
                return None
    except ValueError:
        return None
    return fields[1], fields[2], fields[3], fields[4], data if data is not None else memoryview(b"")
