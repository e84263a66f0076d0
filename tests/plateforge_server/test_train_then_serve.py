"""The product loop on a real server process: train on licensed pairs, the model is published
into the models directory, listed, and processes a frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plateforge.client import Client
from plateforge.exr import read_exr
from plateforge.jobs_client import TrainingClient
from plateforge.modelcards import read_model_card
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.training.helpers import write_pairs

FAST = {"steps": 12, "batch": 1, "crop": 16, "warmup": 1, "validation_size": 32, "checkpoint_every": 6}


def test_trained_model_is_published_listed_and_served(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    models = tmp_path / "models"
    proc = start_server("--models-dir", str(models), "--jobs-dir", str(tmp_path / "jobs"))
    try:
        with Client(proc.address, token=TOKEN, timeout=120) as client:
            training = TrainingClient(client)
            job = training.start_training(
                dataset=str(manifest), tool="look", params=FAST, model_name="look-test", model_version="1"
            )
            states = [event.job.state for event in training.watch(job.id)]
            assert states[-1] == "SUCCEEDED", training.get(job.id).error
            finished = training.get(job.id)
            assert Path(finished.model_dir) == models / "look-test" / "1"
            card = read_model_card(Path(finished.model_dir))
            assert card["sources"] and all(s["licence"] == "CC-BY-4.0" for s in card["sources"])

            info = {m.name: m for m in client.list_models()}["look-test"]
            assert [i.name for i in info.inputs] == ["plate"]
            plate = read_exr(manifest.parent / "in" / "img.1001.exr").replace(frame_number=1001)
            result = client.process("look-test", {"plate": plate})
            out = result.outputs["image"]
            assert out.width == plate.width and out.height == plate.height
            assert np.isfinite(out.stack(("R", "G", "B"))).all()
            assert result.provenance["plateforge/modelHash"] == card["weights_sha256"]
    finally:
        assert proc.stop() == 0
