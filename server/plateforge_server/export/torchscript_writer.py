"""TorchScript files of a per-frame function: one input tensor, one output tensor.

Foundry's CatFileCreator turns a TorchScript file into a ``.cat`` for Nuke's Inference node and
accepts exactly one input and one output tensor (channels concatenated in a documented order),
so the per-frame function is traced as it is: ``forward(x: Tensor) -> Tensor``. The trace keeps
height and width symbolic (the stride padding and the crop back are traced from the input's
shape), so one file runs any frame size.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

__all__ = ["torchscript_bytes"]


def torchscript_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """``module`` traced on ``example`` (NCHW float32) and saved as TorchScript bytes."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice: tracing is the point
        traced = torch.jit.trace(module, example, check_trace=False)  # type: ignore[no-untyped-call]
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
