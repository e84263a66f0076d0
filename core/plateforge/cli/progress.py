"""Live progress for every long command, one way: :class:`Progress`.

On a terminal it redraws one line in place: a bar, the count, the percentage, the rate and the
ETA. Off a terminal (a farm's log, a pipe) it prints plain one-line events instead, never a
carriage return: the first and last unit and every ``every`` units between, each line complete
on its own (``label 40/120 33% 12.50 steps/s eta 6s ...``). ``quiet`` silences both. Messages
(:meth:`Progress.event`: a state change, a finished phase) print as their own line in either
mode, moving a half-drawn bar out of the way; ``quiet`` silences them too.

``add_quiet_argument`` gives a command its ``--quiet``; errors are never silenced (they are not
progress: they go to stderr through the CLI's error handling).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

__all__ = ["Progress", "add_quiet_argument", "duration"]

BAR_WIDTH = 24


def add_quiet_argument(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    """``-q/--quiet`` on ``parser`` (or on a group of options that exclude one another)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="print no progress (errors and results still print)")


def duration(seconds: float | None) -> str:
    """``1m05s``, ``2h03m``; ``--`` when not known."""
    if seconds is None:
        return "--"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Progress of ``label`` in ``unit`` (``fr``, ``steps``...) on ``stream`` (stderr)."""

    def __init__(
        self,
        label: str,
        *,
        unit: str = "fr",
        stream: TextIO | None = None,
        quiet: bool = False,
        every: int = 10,
        tty: bool | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.every = max(1, every)
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._first: tuple[float, int] | None = None  # (time, done) of the first update: the pace's origin
        self._drawn = False  # a bar is on the terminal's current line

    def update(self, done: int, total: int, detail: str = "", *, eta: float | None = None) -> None:
        """``done`` of ``total`` units; ``detail`` (frame, loss ...) follows the figures; ``eta``
        overrides the estimate from this call's pace (a resumed job knows better)."""
        now = time.monotonic()
        if self._first is None:
            self._first = (self.started, 0) if done <= 1 else (now, done)
        since, base = self._first
        rate = (done - base) / (now - since) if now > since and done > base else 0.0
        if eta is None and rate > 0:
            eta = (total - done) / rate
        if self.quiet:
            return
        share = done / total if total > 0 else 1.0
        figures = f"{done}/{total} {100 * share:3.0f}%  {rate:.2f} {self.unit}/s  eta {duration(eta)}"
        if detail:
            figures += f"  {detail}"
        if self.tty:
            filled = int(BAR_WIDTH * min(share, 1.0))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            ended = done >= total
            print(f"\r{self.label} [{bar}] {figures}\033[K", end="\n" if ended else "", file=self.stream, flush=True)
            self._drawn = not ended
        elif done <= 1 or done >= total or done % self.every == 0:
            print(f"{self.label} {figures}", file=self.stream, flush=True)

    def event(self, text: str) -> None:
        """A line of its own: a state change, a phase done."""
        if self.quiet:
            return
        if self._drawn:
            print(file=self.stream)
            self._drawn = False
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End a bar left half drawn (an interrupted run), so the next line starts clean."""
        if self._drawn and not self.quiet:
            print(file=self.stream, flush=True)
        self._drawn = False
