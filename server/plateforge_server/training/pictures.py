"""A training run's pictures and the figures they draw, written together as the run goes.

* ``history.json``: the record the pictures are drawn from: the training loss of every step, the
  validation PSNR at every validation step, and the PSNR of where the net starts (the classical
  tool, or the identity) on the same validation frame.
* ``loss.png``: that record as a chart with axes, labels and units: training loss per step (log
  scale, left), validation PSNR in dB (right), the start's PSNR as a dashed line, so the step where
  the learned model passes the classical tool shows. The plotted series are embedded in the PNG
  (text chunk ``plateforge.history``), so what a picture shows can be checked against the record.
* ``preview.png``: a contact sheet, one row per validation image: input | classical (start) |
  learned | target, scene-linear to display through :func:`plateforge.contactsheet.to_display`,
  the transform of every other contact sheet.

Each file is written atomically: a reader (WatchJob, the status page) sees the old or the new one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plateforge import atomic
from plateforge.contactsheet import contact_sheet, to_display, write_png

__all__ = [
    "HISTORY_FILE",
    "HISTORY_SCHEMA",
    "LOSS_FILE",
    "LOSS_PIXELS",
    "PNG_KEY",
    "PREVIEW_FILE",
    "History",
    "TensorBoardEvents",
    "draw_loss_chart",
    "write_pictures",
]

HISTORY_FILE = "history.json"
LOSS_FILE = "loss.png"
PREVIEW_FILE = "preview.png"
HISTORY_SCHEMA = "plateforge.training-history/1"
#: The PNG text chunk of loss.png holding the plotted series (the history, as JSON).
PNG_KEY = "plateforge.history"
#: loss.png's width and height in pixels.
LOSS_PIXELS = (720, 360)


@dataclass
class History:
    """What the pictures draw; the engine appends as it trains."""

    steps: int
    #: PSNR (dB) of the untrained net on the validation frame: the classical tool or the identity.
    start_psnr: float
    #: What the start is, for the chart's legend: "classical" or "identity".
    start: str
    #: Training loss of every step, step 1 first (NaN where a step's loss was not finite).
    losses: list[float] = field(default_factory=list)
    #: (step, validation PSNR in dB) at every validation.
    validation: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": HISTORY_SCHEMA,
            "steps": self.steps,
            "start": self.start,
            "start_psnr": _json_number(self.start_psnr),
            "loss": [_json_number(v) for v in self.losses],
            "val_psnr": [[step, _json_number(v)] for step, v in self.validation],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(
            steps=int(data["steps"]),
            start_psnr=_float(data["start_psnr"]),
            start=str(data["start"]),
            losses=[_float(v) for v in data["loss"]],
            validation=[(int(step), _float(v)) for step, v in data["val_psnr"]],
        )


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN or Infinity


def _float(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def write_pictures(
    out: Path, history: History, rows: Sequence[Sequence[np.ndarray]], *, board: TensorBoardEvents | None = None
) -> None:
    """``history.json``, ``loss.png`` and ``preview.png`` in ``out``. ``rows``: per validation image,
    its input, classical, learned and target images, scene-linear HxWxC float. ``board``: the same
    figures and the preview as TensorBoard events too."""
    out.mkdir(parents=True, exist_ok=True)
    record = history.to_dict()
    atomic.write_text(out / HISTORY_FILE, json.dumps(record, allow_nan=False))
    write_png(out / LOSS_FILE, draw_loss_chart(history), text={PNG_KEY: json.dumps(record, allow_nan=False)})
    sheet = contact_sheet([[to_display(image) for image in row] for row in rows])
    write_png(out / PREVIEW_FILE, sheet)
    if board is not None:
        board.write(history, sheet)


class TensorBoardEvents:
    """TensorBoard event files (tensorboardX) in ``folder``: ``loss/train`` per step,
    ``psnr_db/validation`` per validation, ``psnr_db/start`` (the classical tool, step 0) and the
    ``preview`` contact sheet. Each :meth:`write` adds what is new since the last one, in a file of
    its own (``events.out.tfevents.*.stepNNNNNNNN``) that is closed before it returns: no writer
    or flush thread outlives a call, whatever ends the run (TensorBoard reads a folder's files
    together). ``after``: steps (and validations) a resumed run's earlier files already hold."""

    def __init__(self, folder: Path, *, after: int = 0, validations: int = 0) -> None:
        self.folder = folder
        self.losses_written = after
        self.validations_written = validations

    def write(self, history: History, sheet: np.ndarray) -> None:
        from tensorboardX import SummaryWriter

        step = len(history.losses)
        with SummaryWriter(str(self.folder), filename_suffix=f".step{step:08d}") as writer:
            if self.losses_written == 0 and math.isfinite(history.start_psnr):
                writer.add_scalar("psnr_db/start", history.start_psnr, 0)
            for index in range(self.losses_written, step):
                if math.isfinite(history.losses[index]):
                    writer.add_scalar("loss/train", history.losses[index], index + 1)
            for at, value in history.validation[self.validations_written :]:
                if math.isfinite(value):
                    writer.add_scalar("psnr_db/validation", value, at)
            writer.add_image("preview", sheet, step, dataformats="HWC")
        self.losses_written, self.validations_written = step, len(history.validation)


def draw_loss_chart(history: History) -> np.ndarray:
    """The history as a chart (see the module doc), HxWx3 uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # Agg through Figure alone: no pyplot, no display, thread-safe

    figure = Figure(figsize=(LOSS_PIXELS[0] / 100, LOSS_PIXELS[1] / 100), dpi=100, layout="constrained")
    loss_axes = figure.add_subplot()
    steps = np.arange(1, len(history.losses) + 1)
    losses = np.asarray(history.losses, np.float64)
    shown = np.isfinite(losses) & (losses > 0)
    loss_axes.plot(steps[shown], losses[shown], color="#4a78b5", linewidth=0.8, label="training loss (per step)")
    if shown.any():
        loss_axes.set_yscale("log")
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("training loss (encoded pixels, unitless; log)", color="#4a78b5")
    loss_axes.set_xlim(0, max(history.steps, 1))
    loss_axes.grid(True, which="major", alpha=0.3)

    psnr_axes = loss_axes.twinx()
    if history.validation:
        v_steps, values = zip(*history.validation, strict=True)
        psnr_axes.plot(v_steps, values, color="#e08a1e", marker="o", markersize=3, linewidth=1.5,
                       label="validation PSNR (learned)")  # fmt: skip
    start_label = f"{history.start} tool: {history.start_psnr:.2f} dB" if history.start == "classical" else (
        f"start ({history.start}): {history.start_psnr:.2f} dB"
    )  # fmt: skip
    if math.isfinite(history.start_psnr):
        psnr_axes.axhline(history.start_psnr, color="#3a9a4a", linestyle="--", linewidth=1.2, label=start_label)
    psnr_axes.set_ylabel("validation PSNR (dB, scene-linear, peak 1.0)", color="#e08a1e")

    handles = loss_axes.get_legend_handles_labels()
    more = psnr_axes.get_legend_handles_labels()
    psnr_axes.legend(handles[0] + more[0], handles[1] + more[1], loc="best", fontsize=8)
    done = len(history.losses)
    loss_axes.set_title(f"step {done} of {history.steps}", fontsize=10)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call,unused-ignore]  # matplotlib leaves these two unannotated
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call,unused-ignore]
    return np.ascontiguousarray(rgba[:, :, :3])
