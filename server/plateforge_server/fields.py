"""Checks on a request's fields that hold for every method, whatever it does with them.

No text field of this API (names, paths, JSON) can meaningfully hold a NUL byte, and the OS
refuses one in a path with a bare ValueError deep in whatever opens it. Walking the message
once at the edge names the field instead. JSON fields are bounded in depth before any parser
recurses into them.
"""

from __future__ import annotations

import re

import numpy as np
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from plateforge.errors import UsageError

__all__ = ["MAX_JSON_DEPTH", "check_json_depth", "check_text_fields"]


def check_text_fields(message: Message, what: str) -> None:
    """Raise :class:`UsageError` naming the first string field of ``message`` (nested messages,
    repeated fields and map keys included) that holds a NUL byte. ``what`` names the message."""
    for field, value in message.ListFields():
        name = f"{what}.{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            texts = list(value) if _repeated(field) else [value]
            for text in texts:
                _no_nul(text, name)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(key, str):
                        _no_nul(key, f"{name} key")
                    if isinstance(item, Message):
                        check_text_fields(item, f"{name}[{key!r}]")
                    elif isinstance(item, str):
                        _no_nul(item, f"{name}[{key!r}]")
            elif _repeated(field):
                for index, item in enumerate(value):
                    check_text_fields(item, f"{name}[{index}]")
            else:
                check_text_fields(value, name)


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _no_nul(text: str, name: str) -> None:
    if "\x00" in text:
        at = text.index("\x00")
        raise UsageError(f"{name} holds a NUL byte (at character {at}); text fields must not contain one")


#: Deepest nesting of arrays and objects a JSON field may have. Configs are flat records; depth
#: only ever comes from a mistake or an attack (Python's parser gives up near 1000 levels with a
#: RecursionError, and code walking a parsed value recurses too).
MAX_JSON_DEPTH = 32

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPENS = np.zeros(256, np.int8)
_OPENS[[ord("["), ord("{")]] = 1
_OPENS[[ord("]"), ord("}")]] = -1


def check_json_depth(text: str, name: str, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`UsageError` naming ``name`` when the JSON ``text`` nests arrays and objects
    deeper than ``limit``; says nothing about whether it parses (its parser does that)."""
    structure = _JSON_STRING.sub(b"", text.encode("utf-8", "surrogatepass"))  # brackets in strings do not nest
    steps = _OPENS[np.frombuffer(structure, np.uint8)]
    if np.count_nonzero(steps > 0) <= limit:
        return
    deepest = int(np.cumsum(steps, dtype=np.int32).max())  # messages are < 2 GiB
    if deepest > limit:
        raise UsageError(f"{name}: JSON arrays and objects nest {deepest} levels deep; at most {limit} are allowed")
