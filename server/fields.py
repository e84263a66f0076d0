"""Checks on a request's fields that hold for every method, whatever it does with them.

No text field of this API (names, paths, JSON) can meaningfully hold a NUL byte, and the OS
refuses one in a path with a bare ValueError deep in whatever opens it. Walking the message
once at the edge names the field instead.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from plateforge.errors import UsageError

__all__ = ["check_text_fields"]


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
            if field.message_type.GetOptions().map_entry:
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
