"""What a learned tool's ``evaluate`` measures: one bench shot, whatever made it.

A bench set's shot (:mod:`plateforge_server.evaluation.benchsets`) is analytic, real footage or a
Cycles render; each tool's evaluation scores the object its kind of shot gives for that tool: a
:class:`~plateforge.shots.synthetic.Shot` (cleanup), a :class:`~plateforge.shots.dailies.MatteShot`
(matte) or a :class:`~plateforge.shots.relit.RelitShot` (relight and look). :class:`BenchShot`
is that triple of views; ``bench/cycles``' ``CyclesShot`` is one as it is, :class:`AnalyticShot`
and :class:`FootageShot` are the others. A view a kind cannot give raises :class:`UsageError`
(the bench skips those tools before asking: ``KIND_TOOLS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from plateforge.errors import UsageError
from plateforge.shots.dailies import MatteShot, make_matte_shot
from plateforge.shots.relit import RelitShot, make_relit_shot
from plateforge.shots.synthetic import Shot, make_shot

__all__ = ["BENCH_BOUNCE", "BENCH_SHADOW", "AnalyticShot", "BenchShot", "FootageShot"]

#: The analytic matte shot's cast shadow and bounce light: what the unclamped composite must keep.
BENCH_SHADOW = 0.4
BENCH_BOUNCE = 0.1


class BenchShot(Protocol):
    """One shot of a bench set, as each tool's evaluation scores it."""

    def cleanup(self) -> Shot:
        """Plates with the rig, the exact clean plates and the roto masks."""
        ...

    def matte(self) -> MatteShot:
        """Plates of a subject over a set, the clean plate, the true alpha and a new background."""
        ...

    def relit(self) -> RelitShot:
        """Plates with AOVs and the same frames relit (and graded, for the look)."""
        ...


@dataclass(frozen=True)
class AnalyticShot:
    """The analytic generators' shots at ``seed`` and this size (:mod:`plateforge.shots`)."""

    seed: int
    width: int
    height: int
    frames: int
    shadow: float = BENCH_SHADOW
    bounce: float = BENCH_BOUNCE

    def cleanup(self) -> Shot:
        return make_shot(width=self.width, height=self.height, frames=self.frames, seed=self.seed)

    def matte(self) -> MatteShot:
        return make_matte_shot(
            width=self.width, height=self.height, frames=self.frames, seed=self.seed, shadow=self.shadow,
            bounce=self.bounce,
        )  # fmt: skip

    def relit(self) -> RelitShot:
        return make_relit_shot(width=self.width, height=self.height, frames=self.frames, seed=self.seed)


@dataclass(frozen=True)
class FootageShot:
    """A real-footage cleanup case (:func:`plateforge_server.tools.cleanup.footage.make_footage_shot`):
    cleanup only."""

    testdata: Path
    seed: int
    width: int
    height: int
    frames: int

    def cleanup(self) -> Shot:
        from plateforge_server.tools.cleanup.footage import make_footage_shot  # tools import the evaluations

        return make_footage_shot(
            self.testdata, seed=self.seed, width=self.width, height=self.height, frames=self.frames
        )

    def matte(self) -> MatteShot:
        raise UsageError("a footage shot has no matte ground truth: it scores the cleanup only")

    def relit(self) -> RelitShot:
        raise UsageError("a footage shot has no relit frames: it scores the cleanup only")
