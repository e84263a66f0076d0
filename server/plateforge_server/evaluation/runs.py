"""The training config a benchmark run uses: exactly what a user's training job gets.

The bench does not choose its own training settings. :func:`bench_config` asks the training
job's own :func:`~plateforge_server.jobs.build_config` for the config of ``plateforge train
--tool TOOL --dataset ... --steps N`` (the tool's defaults:
:data:`plateforge_server.training.defaults.TOOL_DEFAULTS`); ``params`` are what a user would add
with ``--param`` (e.g. ``input_channels`` for AOVs), and are recorded with the figures.
"""

from __future__ import annotations

from collections.abc import Mapping

from plateforge.models import ParamValue
from plateforge_server.training.config import TrainConfig

__all__ = ["bench_config"]


def bench_config(
    tool: str, *, steps: int, device: str = "auto", params: Mapping[str, ParamValue] | None = None
) -> TrainConfig:
    """The config of a training job for ``tool`` with ``steps`` and ``params`` (``--param``), on ``device``."""
    from plateforge_server.jobs import build_config

    return build_config(tool=tool, params={**(params or {}), "steps": steps}, device=device)
