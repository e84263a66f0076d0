"""passthrough: returns its plate unchanged, bit for bit.

For pipeline checks (does a frame survive host -> server -> host exactly?) and for the transport
benchmark, where any work on the server would hide the cost of moving pixels.
"""

from __future__ import annotations

from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec
from plateforge_server.tools.base import ToolCall

INFO = ModelInfo(
    name="passthrough",
    version="1",
    tool="passthrough",
    description="Returns the plate unchanged: every channel, pixel type and window, bit for bit.",
    inputs=(InputSpec("plate", "Any image; every channel is returned as is."),),
    outputs=(OutputSpec("image", "The plate, unchanged."),),
    provenance="no learned weights; identity function",
)


def load(*, device: str) -> None:
    return None


def run(state: None, call: ToolCall) -> dict[str, Frame]:
    return {"image": call.frame("plate")}
