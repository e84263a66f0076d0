"""A slow tool module that records whether it saw its call cancelled."""

from __future__ import annotations

import threading
import time

from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.tools.base import ToolCall

INFO = ModelInfo("slow", "1", "test", inputs=(InputSpec("plate"),), outputs=(OutputSpec("image"),))

#: Set when a call notices it was cancelled.
SAW_CANCEL = threading.Event()


def load(*, device: str) -> None:
    return None


def run(state: None, call: ToolCall) -> dict[str, Frame]:
    for _ in range(300):
        if call.cancelled.is_set():
            SAW_CANCEL.set()
            call.check_cancelled()
        time.sleep(0.01)
    return {"image": call.frame("plate")}
