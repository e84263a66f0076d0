"""Errors at the edge: a bug in a tool becomes INTERNAL without a traceback for the user, and a
caller's deadline cancels the tool's work."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import DeadlineError, PlateforgeError
from plateforge.frames import Frame
from plateforge_server.app import ServerConfig, running_server
from tests.plateforge_server import tool_buggy, tool_slow


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    config = ServerConfig(tools=(tool_buggy.__name__, tool_slow.__name__), token="t")
    with running_server(config) as bound:
        yield bound


def _frame() -> Frame:
    return Frame.from_array(np.zeros((8, 8, 4), np.float16), frame_number=1)


@pytest.mark.parametrize("transport", ["unary", "stream"])
def test_a_bug_in_a_tool_is_internal_with_a_short_message(address: str, transport: str) -> None:
    with Client(address, token="t", retries=0) as client, pytest.raises(PlateforgeError) as info:
        client.process("buggy", {"plate": _frame()}, transport=transport)  # type: ignore[arg-type]
    assert type(info.value) is PlateforgeError
    assert "internal server error: ZeroDivisionError" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_deadline_cancels_the_tool(address: str) -> None:
    tool_slow.SAW_CANCEL.clear()
    started = time.monotonic()
    with Client(address, token="t", retries=0) as client, pytest.raises(DeadlineError):
        client.process("slow", {"plate": _frame()}, timeout=0.3)
    assert time.monotonic() - started < 2.5
    assert tool_slow.SAW_CANCEL.wait(5), "the tool never saw its call cancelled"
