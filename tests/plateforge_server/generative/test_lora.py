"""LoRA fine-tuning on licensed stills: only the adapter learns, it checkpoints, and it is served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge.client import Client
from plateforge.errors import CancelledError, LicenceError, UsageError
from plateforge.exr import write_exr
from plateforge.frames import Box, Frame
from plateforge.jobs_client import TrainingClient
from plateforge.modelcards import read_model_card
from plateforge.models import resolve_params
from plateforge_server.datasets import register
from plateforge_server.generative import verify_pipeline_folder, write_licence
from plateforge_server.generative.inpaint import install_base_model, load_pipeline
from plateforge_server.generative.lora import LoraConfig, train_lora
from plateforge_server.modelcard import publish_model
from plateforge_server.registry import Registry
from plateforge_server.tools.base import ToolCall
from tests.conftest import TOKEN, start_server
from tests.plateforge_server.generative.conftest import HOLDER, LICENCE, needs_generative

needs_generative()

FAST = LoraConfig(steps=3, rank=2, alpha=2, learning_rate=1e-2, crop=32, prompt="plate", checkpoint_every=2)


def _stills(folder: Path, *, uses: str = '["train"]') -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    window = Box.from_size(40, 36)
    for k in range(2):
        rgb = (rng.random((36, 40, 3)) * 2.0).astype(np.float32)
        write_exr(folder / f"still.{1001 + k}.exr", Frame.from_array(rgb, names=("R", "G", "B"), data_window=window))
    manifest = folder / "stills.toml"
    manifest.write_text(
        'schema = "plateforge.dataset/1"\nname = "sh010-stills"\n\n[[sources]]\npath = "still.*.exr"\n'
        f'licence = "{LICENCE}"\nrights_holder = "{HOLDER}"\npermitted_uses = {uses}\n',
        encoding="utf-8",
    )
    register(manifest)
    return manifest


def _unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    pipe = load_pipeline(verify_pipeline_folder(folder))
    return {k: v.clone() for k, v in pipe.unet.state_dict().items()}


@pytest.mark.slow
def test_lora_steps_change_only_the_adapter_and_the_export_is_served(tiny_pipeline: Path, tmp_path: Path) -> None:
    base = _unet_weights(tiny_pipeline)
    dataset = _stills(tmp_path / "stills")
    model = train_lora(pipeline=tiny_pipeline, dataset=dataset, out=tmp_path / "run", name="gen-lora", config=FAST)
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    card = read_model_card(model)
    assert card["net"]["arch"] == "diffusers-inpaint" and card["net"]["config"]["lora"]["rank"] == 2
    assert card["base_model"]["sha256"] == verify_pipeline_folder(tiny_pipeline).sha256
    assert [s["path"] for s in card["sources"]] == ["still.1001.exr", "still.1002.exr"]
    assert card["training"]["mode"] == "lora" and card["training"]["steps"] == 3

    # The base folder is untouched (still verifies) and the served model = base + adapter.
    registry = Registry(models_dir=tmp_path / "models")
    publish_model(model, tmp_path / "models")
    install_base_model(tiny_pipeline, tmp_path / "models", name="gen-base")
    registry.refresh()
    with registry.use("gen-lora") as served:
        state = served.state.pipe.unet.state_dict()
        adapter = {k: v for k, v in state.items() if "lora_" in k}
        assert adapter, "the served UNet has no LoRA layers"
        assert any(float(v.abs().sum()) > 0 for k, v in adapter.items() if "lora_B" in k), "lora_B is still zero"
        frozen = {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
        assert set(frozen) == set(base)
        changed = [k for k, v in base.items() if not torch.equal(v, frozen[k])]
        assert changed == [], f"LoRA training changed base weights {changed[:3]}"
        lora_out = _fill(served)
    with registry.use("gen-base") as plain:
        assert not np.array_equal(lora_out, _fill(plain)), "the adapter changes nothing"


def _fill(model: object) -> np.ndarray:
    window = Box.from_size(32, 32)
    plate = Frame({c: np.full((32, 32), 0.18, np.float32) for c in "RGB"}, window, window, frame_number=1)
    hole = np.zeros((32, 32), np.float32)
    hole[8:24, 8:24] = 1.0
    mask = Frame({"A": hole}, window, window, frame_number=1)
    info = model.info  # type: ignore[attr-defined]
    call = ToolCall(
        info=info,
        inputs={"plate": [plate], "mask": [mask]},
        params=resolve_params(info, {"steps": 2, "seed": 1, "tile": 32}),
        target_frame=1,
    )
    out = model.tool.run(model.state, call)["image"]  # type: ignore[attr-defined]
    result: np.ndarray = out.stack(("R", "G", "B"))
    return result


@pytest.mark.slow
def test_a_run_resumes_from_its_checkpoint(tiny_pipeline: Path, tmp_path: Path) -> None:
    dataset = _stills(tmp_path / "stills")
    first = LoraConfig(**{**FAST.__dict__, "steps": 2})
    train_lora(pipeline=tiny_pipeline, dataset=dataset, out=tmp_path / "run", name="gen-lora", config=first)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 2
    model = train_lora(pipeline=tiny_pipeline, dataset=dataset, out=tmp_path / "run", name="gen-lora", config=FAST)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 3
    assert read_model_card(model)["training"]["steps"] == 3


def test_a_cancelled_run_checkpoints_and_stops(tiny_pipeline: Path, tmp_path: Path) -> None:
    dataset = _stills(tmp_path / "stills")
    seen: list[int] = []
    with pytest.raises(CancelledError, match="cancelled at step 1 of 3"):
        train_lora(
            pipeline=tiny_pipeline,
            dataset=dataset,
            out=tmp_path / "run",
            name="gen-lora",
            config=FAST,
            progress=lambda step, loss: seen.append(step),
            cancelled=lambda: True,  # polled after each step: the first one still runs
        )
    assert seen == [1]
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 1
    assert not (tmp_path / "run" / "model").exists()


def test_training_refuses_unlicensed_material(tiny_pipeline: Path, tmp_path: Path) -> None:
    evaluate_only = _stills(tmp_path / "eval-only", uses='["evaluate"]')
    with pytest.raises(LicenceError, match="may not be used for training"):
        train_lora(pipeline=tiny_pipeline, dataset=evaluate_only, out=tmp_path / "a", name="x", config=FAST)
    dataset = _stills(tmp_path / "stills")
    write_licence(tiny_pipeline, name="tiny-inpaint", licence=LICENCE, rights_holder=HOLDER, permitted_uses=("infer",))
    with pytest.raises(LicenceError, match="may not be used to train"):
        train_lora(pipeline=tiny_pipeline, dataset=dataset, out=tmp_path / "b", name="x", config=FAST)
    with pytest.raises(UsageError, match="steps must be >= 1"):
        train_lora(pipeline=tiny_pipeline, dataset=dataset, out=tmp_path / "c", name="x", config=LoraConfig(steps=0))


@pytest.mark.slow
def test_a_lora_training_job_on_a_real_server_publishes_a_served_model(tiny_pipeline: Path, tmp_path: Path) -> None:
    """StartTraining with tool generative-fill runs mode "lora"; the model is published, listed and fills a frame."""
    dataset = _stills(tmp_path / "stills")
    models = tmp_path / "models"
    proc = start_server("--models-dir", str(models), "--jobs-dir", str(tmp_path / "jobs"), "--data-root", str(tmp_path))
    try:
        with Client(proc.address, token=TOKEN, timeout=300, retries=0) as client:
            training = TrainingClient(client)
            params = {"base_model": str(tiny_pipeline), "steps": 2, "crop": 32, "lora_rank": 2, "checkpoint_every": 1}
            job = training.start_training(
                dataset=str(dataset), tool="generative-fill", params=params, model_name="gen-job", model_version="1"
            )
            states = [event.job.state for event in training.watch(job.id)]
            finished = training.get(job.id)
            assert states[-1] == "SUCCEEDED", finished.error
            assert Path(finished.model_dir) == models / "gen-job" / "1" and finished.step == 2
            card = read_model_card(Path(finished.model_dir))
            assert card["tool"] == "generative-fill" and card["training"]["mode"] == "lora"
            info = {m.name: m for m in client.list_models()}["gen-job"]
            assert info.tool == "generative-fill"
            window = Box.from_size(32, 32)
            plate = Frame({c: np.full((32, 32), 0.18, np.float32) for c in "RGB"}, window, window, frame_number=1)
            hole = np.zeros((32, 32), np.float32)
            hole[8:24, 8:24] = 1.0
            result = client.process(
                "gen-job",
                {"plate": plate, "mask": Frame({"A": hole}, window, window, frame_number=1)},
                params={"steps": 2, "tile": 32},
            )
            assert result.provenance["plateforge/modelHash"] == card["weights_sha256"]
            assert result.outputs["image"].attributes["plateforge/lora"] == "yes"

            # A base model outside the server's data roots is refused before a job exists.
            outside = tmp_path.parent / f"{tmp_path.name}-outside"
            with pytest.raises(Exception, match="base model folder"):
                training.start_training(
                    dataset=str(dataset), tool="generative-fill", params={**params, "base_model": str(outside)}
                )
    finally:
        assert proc.stop() == 0
