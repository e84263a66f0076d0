"""A tool module with a bug in it, for testing how the server reports unexpected errors."""

from __future__ import annotations

from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.tools.base import ToolCall

INFO = ModelInfo("buggy", "1", "test", inputs=(InputSpec("plate"),), outputs=(OutputSpec("image"),))


def load(*, device: str) -> None:
    return None


def run(state: None, call: ToolCall) -> dict[str, Frame]:
    return {"image": call.frame("plate")} if 1 / 0 else {}
