"""A base model folder is loaded only with a licence record that permits it and every file intact."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from plateforge.errors import LicenceError, ModelIntegrityError, PlateforgeError
from plateforge_server.generative import LICENCE_FILE, verify_pipeline_folder, write_licence
from plateforge_server.generative.inpaint import install_base_model, load_pipeline
from tests.plateforge_server.generative.conftest import HOLDER, LICENCE, needs_generative

needs_generative()


def test_licensed_folder_verifies_and_loads_from_local_files(tiny_pipeline: Path) -> None:
    verified = verify_pipeline_folder(tiny_pipeline, uses=("infer", "train"))
    assert verified.name == "tiny-inpaint" and verified.licence == LICENCE and verified.rights_holder == HOLDER
    assert "unet/diffusion_pytorch_model.safetensors" in verified.files and LICENCE_FILE not in verified.files
    pipe = load_pipeline(verified)
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert pipe.unet.config.in_channels == 9
    # The hash names the bytes, not the place: a copy hashes the same, a changed file does not.
    copy = Path(shutil.copytree(tiny_pipeline, tiny_pipeline.parent / "copy"))
    assert verify_pipeline_folder(copy).sha256 == verified.sha256


def _no_record(folder: Path) -> None:
    (folder / LICENCE_FILE).unlink()


def _no_licence(folder: Path) -> None:
    write_licence(folder, name="x", licence="NOASSERTION", rights_holder=HOLDER)


def _no_holder(folder: Path) -> None:
    write_licence(folder, name="x", licence=LICENCE, rights_holder="")


def _evaluate_only(folder: Path) -> None:
    write_licence(folder, name="x", licence=LICENCE, rights_holder=HOLDER, permitted_uses=("evaluate",))


def _not_a_manifest(folder: Path) -> None:
    (folder / LICENCE_FILE).write_text('schema = "plateforge.dataset/9"\n', encoding="utf-8")


def _wrong_hash(folder: Path) -> None:
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


def _config_changed(folder: Path) -> None:
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text(encoding="utf-8").replace('"steps_offset": 1', '"steps_offset": 0'))


def _file_missing(folder: Path) -> None:
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()


def _component_missing(folder: Path) -> None:
    shutil.rmtree(folder / "text_encoder")
    write_licence(folder, name="x", licence=LICENCE, rights_holder=HOLDER)  # registered as it is: still incomplete


def _unregistered_file(folder: Path) -> None:
    (folder / "unet" / "extra.safetensors").write_bytes(b"not registered")


def _stray_top_file(folder: Path) -> None:
    (folder / "notes.bin").write_bytes(b"outside the record")


def _index_broken(folder: Path) -> None:
    (folder / "model_index.json").write_text("{", encoding="utf-8")
    write_licence(folder, name="x", licence=LICENCE, rights_holder=HOLDER)


@pytest.mark.parametrize(
    ("damage", "error", "says"),
    [
        pytest.param(_no_record, LicenceError, "no licence record", id="no-licence-record"),
        pytest.param(_no_licence, LicenceError, "has no licence", id="licence-NOASSERTION"),
        pytest.param(_no_holder, LicenceError, "no rights holder", id="no-rights-holder"),
        pytest.param(_evaluate_only, LicenceError, "may not be used to infer", id="infer-not-permitted"),
        pytest.param(_not_a_manifest, LicenceError, "unknown schema", id="unknown-schema"),
        pytest.param(
            _wrong_hash, ModelIntegrityError, "diffusion_pytorch_model.safetensors' has sha256", id="wrong-hash"
        ),
        pytest.param(_config_changed, ModelIntegrityError, "scheduler_config.json' has sha256", id="config-changed"),
        pytest.param(_file_missing, ModelIntegrityError, "are missing", id="incomplete-file-missing"),
        pytest.param(_component_missing, ModelIntegrityError, "'text_encoder' named in", id="incomplete-component"),
        pytest.param(_unregistered_file, ModelIntegrityError, "never registered", id="unregistered-file"),
        pytest.param(_stray_top_file, ModelIntegrityError, "not in the licence record", id="file-outside-record"),
        pytest.param(_index_broken, ModelIntegrityError, "cannot be read as JSON", id="model-index-broken"),
    ],
)
def test_bad_folders_are_refused_before_loading(
    tiny_pipeline: Path, damage: Callable[[Path], None], error: type[PlateforgeError], says: str
) -> None:
    damage(tiny_pipeline)
    with pytest.raises(error) as caught:
        verify_pipeline_folder(tiny_pipeline)
    assert says in str(caught.value) and str(tiny_pipeline) in str(caught.value)
    # Serving it is refused the same way.
    with pytest.raises(error):
        install_base_model(tiny_pipeline, tiny_pipeline.parent / "models", name="refused")


def test_training_needs_train_permitted(tiny_pipeline: Path) -> None:
    write_licence(tiny_pipeline, name="x", licence=LICENCE, rights_holder=HOLDER, permitted_uses=("infer",))
    verify_pipeline_folder(tiny_pipeline, uses=("infer",))
    with pytest.raises(LicenceError, match="may not be used to train"):
        verify_pipeline_folder(tiny_pipeline, uses=("infer", "train"))


def test_not_a_pipeline_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="does not exist"):
        verify_pipeline_folder(tmp_path / "nowhere")
    with pytest.raises(ModelIntegrityError, match=r"no model_index\.json"):
        write_licence(tmp_path, name="x", licence=LICENCE, rights_holder=HOLDER)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X"}), encoding="utf-8")
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}", encoding="utf-8")
    write_licence(tmp_path, name="x", licence=LICENCE, rights_holder=HOLDER)
    with pytest.raises(ModelIntegrityError, match="cannot be loaded as a pipeline"):
        load_pipeline(verify_pipeline_folder(tmp_path))
