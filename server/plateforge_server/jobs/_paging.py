"""ListJobs pages: jobs oldest first, a page token that says where the last page ended.

A token is the sort key of the last job a page held, ``(created_at, id)``, as base64url JSON. It
stays good while jobs are added (they sort after it) and needs no state on the server; it is
opaque to callers, and one this code did not write is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from plateforge.errors import UsageError
from plateforge_server.jobs._limits import LIMITS, Limits, shown
from plateforge_server.jobs._records import JobRecord

__all__ = ["page_of", "sort_key"]

_TOKEN_VERSION = "jobs/1"


def sort_key(record: JobRecord) -> tuple[float, str]:
    """Oldest first; ids break ties."""
    return (record.created_at, record.id)


def _token(record: JobRecord) -> str:
    text = json.dumps([_TOKEN_VERSION, record.created_at, record.id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(token: str) -> tuple[float, str]:
    refused = UsageError(f"page_token {shown(token)} is not one this server wrote; pass a reply's next_page_token")
    if len(token) > 1024:
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise refused from None
    if (
        not isinstance(data, list)
        or len(data) != 3
        or data[0] != _TOKEN_VERSION
        or isinstance(data[1], bool)
        or not isinstance(data[1], (int, float))
        or not isinstance(data[2], str)
    ):
        raise refused
    return (float(data[1]), data[2])


def page_of(
    records: Sequence[JobRecord], *, page_size: int = 0, page_token: str = "", limits: Limits = LIMITS
) -> tuple[list[JobRecord], str]:
    """One page of ``records`` (sorted by :func:`sort_key`) and the token of the next ("": none).
    ``page_size`` 0 is the default size; above the maximum it is the maximum; below 0 refused."""
    if page_size < 0:
        raise UsageError(f"page_size must be 0 (the server's default) or more, got {page_size}")
    size = min(page_size or limits.default_page_size, limits.max_page_size)
    start = 0
    if page_token:
        after = _after(page_token)
        start = next((i for i, r in enumerate(records) if sort_key(r) > after), len(records))
    page = list(records[start : start + size])
    more = start + size < len(records)
    return page, _token(page[-1]) if more and page else ""
