"""Choosing the compute device at run time, so the same server runs on a laptop and a GPU node."""

from __future__ import annotations

from plateforge.errors import UsageError

__all__ = ["pick_device"]


def pick_device(requested: str = "auto") -> str:
    """``auto`` -> the first CUDA device if torch sees one, else ``cpu``; explicit names are checked."""
    try:
        import torch
    except ImportError:
        if requested in ("auto", "cpu"):
            return "cpu"
        raise UsageError(f"device {requested!r} needs torch, which is not installed") from None
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {requested!r} asked for, but torch sees no CUDA device")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return requested
    if requested == "cpu":
        return "cpu"
    raise UsageError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")
