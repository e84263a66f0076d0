"""Lineage through a base model: a LoRA trained (the real trainer) on a tiny local inpainting
pipeline from stills that credit an artist, served by a real server that fills three frames;
withdrawing the base model's licence reaches the adapter and its frames, the stills' artist is
credited with them, and one frame's chain ends at the base model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.lineage import affected, credits, frame_chain, index_paths, open_index
from plateforge.manifests import Contributor, Source, write_manifest
from plateforge.modelcards import read_model_card
from tests.conftest import start_server

for _name in ("diffusers", "transformers", "peft"):
    pytest.importorskip(_name, reason=f"a LoRA needs the [generative] extra ({_name})")

BASE_LICENCE = "LicenseRef-base-vendor"


def _frames(folder: Path, name: str, *, mask: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for number in (1001, 1002, 1003):
        if mask:
            hole = np.zeros((32, 32), np.float32)
            hole[8:24, 8:24] = 1.0
            frame = Frame.from_array(hole[..., None], names=("A",))
        else:
            frame = Frame.from_array(rng.uniform(0.05, 0.8, (32, 32, 3)).astype(np.float32), names=("R", "G", "B"))
        write_exr(folder / f"{name}.{number}.exr", frame)


def test_withdrawing_a_base_model_s_licence_reaches_its_adapter_and_frames(tmp_path: Path) -> None:
    from plateforge_server.datasets import register
    from plateforge_server.generative import write_licence
    from plateforge_server.generative.inpaint import install_base_model
    from plateforge_server.generative.lora import LoraConfig, train_lora
    from plateforge_server.modelcard import publish_model
    from tests.plateforge_server.generative.tiny import build_tiny_pipeline

    pipeline = build_tiny_pipeline(tmp_path / "tiny-inpaint")
    write_licence(pipeline, name="tiny-inpaint", licence=BASE_LICENCE, rights_holder="Vendor",
                  permitted_uses=("infer", "train"))  # fmt: skip
    _frames(tmp_path / "stills", "still", mask=False)
    painter = Contributor("Fay Moreau", "matte painting")
    manifest = write_manifest(
        tmp_path / "stills" / "stills.toml", name="sh040-stills",
        sources=[Source("still.*.exr", "CC-BY-4.0", "Show Pictures", ("train",), contributors=(painter,))],
    )  # fmt: skip
    register(manifest)
    config = LoraConfig(steps=2, rank=2, alpha=2, learning_rate=1e-2, crop=32, prompt="plate", checkpoint_every=2)
    trained = train_lora(pipeline=pipeline, dataset=manifest, out=tmp_path / "run", name="gen-lora", config=config)
    models = tmp_path / "models"
    lora = publish_model(trained, models)
    install_base_model(pipeline, models, name="gen-base")

    _frames(tmp_path / "plates", "plate", mask=False)
    _frames(tmp_path / "plates", "mask", mask=True)
    server = start_server("--models-dir", str(models))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
        env |= {"PLATEFORGE_SERVER": server.address, "PLATEFORGE_TOKEN": server.token or ""}
        command = [sys.executable, "-m", "plateforge.cli.main", "process", "--model", "gen-lora",
                   "--input", str(tmp_path / "plates/plate.####.exr"), "--mask", str(tmp_path / "plates/mask.####.exr"),
                   "--frames", "1001-1003", "--output", str(tmp_path / "out/fill.####.exr"),
                   "--param", "steps=2", "--param", "seed=1", "--param", "tile=32"]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()

    card = read_model_card(lora)
    # The adapter's card carries the stills' artists and terms, as a trained net's card does.
    assert [(s["path"], s.get("contributors"), s.get("permitted_uses")) for s in card["sources"]] == [
        (f"still.{n}.exr", [{"name": "Fay Moreau", "role": "matte painting"}], ["train"]) for n in (1001, 1002, 1003)
    ]
    filled = {str(tmp_path / f"out/fill.{n}.exr") for n in (1001, 1002, 1003)}
    with open_index(str(tmp_path / "lineage.sqlite")) as db:
        report = index_paths(db, [models, tmp_path / "out", tmp_path / "stills"])
        assert not report.problems and len(report.added) == 6  # 2 models, 3 frames, 1 manifest
        withdrawn = affected(db, licence=BASE_LICENCE)
        by_name = {m.name: m.why for m in withdrawn.models}
        assert by_name["gen-lora"] == f"adapter on a {BASE_LICENCE} base model"
        assert set(by_name) == {"gen-lora", "gen-base"}  # the base as served is an adapter-less model on it
        assert {f.path for f in withdrawn.frames} == filled
        assert withdrawn.ranges() == {str(tmp_path / "out/fill.####.exr"): "1001-1003"}
        stills = affected(db, licence="CC-BY-4.0")
        assert [(m.name, m.why) for m in stills.models] == [("gen-lora", "trained on CC-BY-4.0 material")]
        assert {f.path for f in stills.frames} == filled
        (credited,) = credits(db)
        assert (credited.name, credited.roles, credited.frames) == ("Fay Moreau", ("matte painting",), 3)
        assert credited.models == (f"gen-lora@{card['version']}",)
        chain = frame_chain(db, str(tmp_path / "out/fill.1002.exr"))
    assert [m["name"] for m in chain["models"]][:1] == ["gen-lora"]
    assert chain["models"][0]["base_model"] == {
        "name": card["base_model"]["name"], "licence": BASE_LICENCE, "sha256": card["base_model"]["sha256"],
    }  # fmt: skip
    assert chain["contributors"] == [{"name": "Fay Moreau", "role": "matte painting"}]
    json.dumps(chain)  # what `lineage frame --json` prints
