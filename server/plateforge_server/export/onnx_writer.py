"""ONNX files of a per-frame function: dynamic height and width, the card in ``metadata_props``.

**Opset 17.** Every op the graph uses (Conv, Pad in reflect mode with computed pads, Resize
nearest, Where, Log1p written as Log(1 + x) ...) exists at 17, which ONNX Runtime supports since
1.12 (2022) and the Flame 2025 releases' runtime reads; a newer opset would only shut out older
hosts. The graph is made by torch's TorchScript-based exporter (``dynamo=False``): tracing keeps
the frame's height and width symbolic through the stride padding and the crop back, where the
torch.export exporter would need every shape branch spelled out.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Final

import onnx
import torch
from torch import nn

__all__ = ["OPSET", "onnx_bytes"]

#: The ONNX opset every export is written with (see the module doc).
OPSET: Final = 17


def onnx_bytes(
    module: nn.Module,
    examples: Sequence[torch.Tensor],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    metadata: Mapping[str, str],
    doc: str,
) -> bytes:
    """``module`` traced on ``examples`` (NCHW float32), heights and widths dynamic, as ONNX
    bytes with ``metadata`` in its ``metadata_props`` and ``doc`` as the graph's doc string."""
    dims = {2: "height", 3: "width"}
    dynamic = {name: dims for name in (*input_names, *output_names)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns that it is the TorchScript-based one, and that shape-derived values
        # are traced: both are what this module wants (see the module doc).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(examples),
            buffer,  # type: ignore[arg-type]  # a file object works: the exporter writes to it
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = doc
    model.producer_name = "plateforge"
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data
