"""Model selection: a run publishes the checkpoint that does best on its validation data, the
untrained net (step 0) included, so training never makes a tool worse than where it started.

Every learned net starts as the tool it corrects: residual on its guide, the last conv at zero
(:mod:`plateforge_server.nets.unet`), so the step-0 net *is* the classical cleanup or key (in
"pairs" mode, the plate unchanged). Its validation score is measured before the first step; at
every validation after that a better score makes the current weights the best. The best weights
live in memory and, so a resumed run keeps them, in ``out_dir/best`` (one atomic safetensors
file, written when the best changes; step 0 needs no file: the seeded fresh net is rebuilt).

**The learned cleanup is guarded** (:func:`guarded_score`): its validation is several copies of
the user's mask in held-out frames (:mod:`plateforge_server.tools.cleanup.examples`), and a checkpoint
may only be chosen if it is at least as good as the classical fill on *every* copy, not just on
their mean. Measured on tune shots (bench/tune_cleanup.py, seeds 100 and 101), a mean gain on the
copies did not always carry over to the real mask: a net that wins big on some places and loses
on others is a gamble on where the real rig is; one that wins everywhere it was tried is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from plateforge_server.training import checkpoints

__all__ = ["Best", "guarded_score"]

_EMPTY_OPTIMIZER: Mapping[str, object] = {"state": {}, "param_groups": []}


@dataclass
class Best:
    """The best validation score so far, the step that scored it, and (after step 0) its weights on the CPU."""

    score: float
    step: int
    start_score: float
    weights: dict[str, torch.Tensor] | None = None

    @classmethod
    def start(cls, score: float) -> Best:
        """Before the first step: the untrained net, scoring ``score``."""
        return cls(score=score, step=0, start_score=score)

    def offer(self, step: int, score: float, weights: Callable[[], Mapping[str, torch.Tensor]]) -> bool:
        """Keep ``weights()`` if ``score`` beats the best so far (a NaN never does); whether it did."""
        if not math.isfinite(score) or not (score > self.score or not math.isfinite(self.score)):
            return False
        self.score, self.step = score, step
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in weights().items()}
        return True

    def save(self, folder: Path) -> None:
        """Write the best weights to ``folder`` atomically (nothing for step 0)."""
        if self.weights is None:
            return
        checkpoints.save_checkpoint(
            folder,
            step=self.step,
            model=self.weights,
            optimizer=_EMPTY_OPTIMIZER,
            rng={},
            state={"score": self.score, "start_score": self.start_score},
            keep=1,
        )

    @classmethod
    def resume(cls, folder: Path, *, start_score: float, upto: int) -> Best:
        """The best a run resumed at step ``upto`` had (its file in ``folder``), else step 0."""
        saved = checkpoints.load_latest(folder) if folder.is_dir() else None
        if saved is None or saved.step > upto or not isinstance(saved.state.get("score"), (int, float)):
            return cls.start(start_score)
        return cls(float(saved.state["score"]), saved.step, start_score, dict(saved.model))

    def state_dict(self, fresh: Callable[[], Mapping[str, torch.Tensor]]) -> Mapping[str, torch.Tensor]:
        """The weights to publish: the best's, or ``fresh()`` (the untrained net) when step 0 is best."""
        return self.weights if self.weights is not None else fresh()


def guarded_score(score: float, per_image: Sequence[float] | None, start: Sequence[float]) -> float:
    """``score``, or -inf (never chosen) when the output was not finite (``per_image`` None) or any
    validation image scores below the untrained net's (``start``, the classical tool) on it. NaN
    entries (images with no weight) are skipped."""
    if per_image is None:
        return -math.inf
    for value, baseline in zip(per_image, start, strict=True):
        if not (math.isnan(value) or math.isnan(baseline)) and value < baseline:
            return -math.inf
    return score
