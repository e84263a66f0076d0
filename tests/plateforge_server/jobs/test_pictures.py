"""A job's pictures on a real server process: loss.png (a chart with axes) and preview.png
(input | classical | learned | target) are written as the job runs, change as it goes, stream
through WatchJob, and plot exactly the figures the job reported (history.json, and the series
embedded in loss.png, against the loss and PSNR of every WatchJob event)."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from plateforge.client import Client
from plateforge.jobs_client import TrainingClient
from plateforge_server.training.pictures import LOSS_PIXELS, PNG_KEY
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.training.helpers import write_pairs

STEPS = 24
PARAMS = {
    "steps": STEPS,
    "batch": 1,
    "crop": 16,
    "warmup": 1,
    "validation_size": 32,
    "validation_every": 4,
    "preview_every": 4,
    "checkpoint_every": 12,
}


def png(data: bytes) -> tuple[int, int, int, dict[str, str], np.ndarray]:
    """Width, height, colour type, tEXt chunks and pixels of an 8-bit, filter-0 RGB PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, text, idat = 8, {}, b""
    width = height = colour = 0
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, _, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    return width, height, colour, text, rows[:, 1:].reshape(height, width, 3)


def test_pictures_are_written_as_the_job_goes_and_plot_its_recorded_figures(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    proc = start_server(
        "--jobs-dir", str(tmp_path / "jobs"), "--models-dir", str(tmp_path / "models"), "--threads", "1"
    )
    try:
        with Client(proc.address, token=TOKEN, timeout=120) as client:
            training = TrainingClient(client)
            job = training.start_training(dataset=str(manifest), tool="look", params=PARAMS, model_name="pictures")
            events = list(training.watch(job.id, preview_interval=0.001))
    finally:
        assert proc.stop() == 0
    assert events[-1].job.state == "SUCCEEDED", events[-1].job.error
    out = Path(events[-1].job.job_dir) / "train"

    # Streamed as the job went, and changing: one chart per preview step, each different.
    charts = [e.loss_png for e in events if e.loss_png]
    previews = [e.preview_png for e in events if e.preview_png]
    assert len(charts) >= 3 and len(set(charts)) == len(charts), len(charts)
    assert len(previews) >= 3
    assert charts[-1] == (out / "loss.png").read_bytes()
    assert previews[-1] == (out / "preview.png").read_bytes()

    # What the chart plots is the job's record: every step's loss and every validation PSNR the
    # job reported as it ran.
    history = json.loads((out / "history.json").read_text())
    assert history["schema"] == "plateforge.training-history/1" and history["steps"] == STEPS
    losses, validation = history["loss"], {step: v for step, v in history["val_psnr"]}
    assert len(losses) == STEPS
    assert sorted(validation) == list(range(4, STEPS + 1, 4))
    reported = [e.job for e in events if not e.state_changed and e.job.step > 0]
    # The watch may start a few steps in; from then on every step is reported.
    steps_seen = [j.step for j in reported]
    assert steps_seen == list(range(steps_seen[0], STEPS + 1)) and len(steps_seen) >= STEPS // 2
    for job_now in reported:
        assert losses[job_now.step - 1] == job_now.loss  # exactly: the same float, through JSON
        validated = [s for s in validation if s <= job_now.step]
        assert job_now.val_psnr == (validation[max(validated)] if validated else None)
    # "look" starts from relight-classical's fitted colour transform: the chart's dashed line.
    assert math.isfinite(history["start_psnr"]) and history["start"] == "classical"

    width, height, colour, text, pixels = png((out / "loss.png").read_bytes())
    assert (width, height, colour) == (*LOSS_PIXELS, 2)
    assert json.loads(text[PNG_KEY]) == history  # the series drawn are the record's
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn: axes, text and curves, not a blank

    # The contact sheet: one row per validation image, input | classical | learned | target.
    width, height, colour, _, sheet = png((out / "preview.png").read_bytes())
    gap, tile = 6, 32
    assert colour == 2 and width == 4 * tile + 5 * gap
    tiles = [sheet[gap : gap + tile, gap + c * (tile + gap) : gap + c * (tile + gap) + tile] for c in range(4)]
    # Four different pictures: the classical transform and the learned net change the input.
    assert len({t.tobytes() for t in tiles}) == 4
