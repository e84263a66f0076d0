"""Data-parallel training under ``torchrun``: one process per device, gradients averaged by DDP.

``torchrun --nproc_per_node N`` (or a farm's launcher, node by node) starts N copies of
``python -m plateforge_server.training.run`` with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`join` reads them: with ``WORLD_SIZE`` above 1 it
joins the process group, over NCCL when the run is on CUDA (each process takes the GPU its
``LOCAL_RANK`` names) and over gloo on CPU. Without them it is a single process and nothing
changes, so the same :func:`~plateforge_server.training.engine.train` serves both.

What differs across ranks, and why:

* **Crops.** Each rank draws its own crops (its sampler is seeded with its rank), so N ranks see
  N times the crops of one per step; DDP averages their gradients, so every rank takes the same
  optimiser step and the weights stay identical everywhere.
* **Writing.** Only rank 0 writes checkpoints, previews and the exported model, onto storage all
  ranks share. Every rank resumes from the newest checkpoint there; the checkpoint keeps each
  rank's crop-generator state, so a resumed run with the same world size draws the crops the
  uninterrupted one would have.
* **Stopping.** A cancel seen by any rank stops all of them at the same step (one all-reduce of
  a flag per step), so no rank waits forever in a collective the others left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from plateforge.errors import UsageError

__all__ = ["Group", "join"]


@dataclass(frozen=True)
class Group:
    """This process's place in the run (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes."""
        return self.rank == 0

    def device(self, requested: str) -> str:
        """The device this rank trains on: with CUDA, the GPU its local rank names."""
        if self.distributed and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a no-op for one process)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def gather(self, value: Any) -> list[Any]:
        """``value`` from every rank, in rank order (``[value]`` for one process)."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def leave(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def _collective_device(self) -> torch.device:
        return torch.device(f"cuda:{self.local_rank}") if self.backend == "nccl" else torch.device("cpu")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not an integer") from None


def join(requested_device: str = "auto") -> Group:
    """The process group torchrun's environment describes, joined; a single-process :class:`Group`
    without one. NCCL when training on CUDA, gloo otherwise."""
    world_size = _int("WORLD_SIZE", 1)
    if world_size <= 1:
        return Group()
    rank, local_rank = _int("RANK", 0), _int("LOCAL_RANK", 0)
    on_cuda = requested_device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if on_cuda else "gloo"
    if on_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Group(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)
