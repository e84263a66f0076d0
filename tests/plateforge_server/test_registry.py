"""The model registry: trained models from a models directory, lazy loading, LRU unloading under a
memory budget, uses that pin a model, and a real server serving (and refusing) learned models."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import ModelIntegrityError, UnknownModelError
from plateforge.modelcards import read_model_card
from plateforge.paths import default_models_dir, user_data_dir
from plateforge_server.registry import Registry
from plateforge_server.tools.learned import LearnedState
from tests.conftest import ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.plateforge_server.tools.test_learned import make_model, mask_frame, plate


def tamper(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    return weights


def model_bytes(folder: Path) -> int:
    """Bytes a model folder's net counts once loaded."""
    registry = Registry((), models_dir=folder.parent.parent)
    with registry.use(folder.parent.name, folder.name) as model:
        assert isinstance(model.state, LearnedState)
        return model.state.parameter_bytes


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    make_model(root / "look-a" / "1", name="look-a")
    make_model(root / "look-b" / "1", name="look-b")
    return root


# -- listing ---------------------------------------------------------------------------------


def test_lists_learned_models_with_their_contract(models: Path) -> None:
    registry = Registry(models_dir=models)
    infos = {i.name: i for i in registry.infos()}
    assert {"passthrough", "cleanup-classical", "look-a", "look-b"} <= set(infos)
    info = infos["look-a"]
    assert [i.name for i in info.inputs] == ["plate"]
    assert [p.name for p in info.parameters] == ["strength"]
    assert registry.loaded() == []  # nothing loads until used


def test_model_hash_is_the_cards_weights_hash(models: Path) -> None:
    registry = Registry(models_dir=models)
    card = read_model_card(models / "look-a" / "1", verify=False)
    with registry.use("look-a") as model:
        assert model.model_hash == card["weights_sha256"]
        assert model.folder == models / "look-a" / "1"


def test_no_models_dir_and_a_missing_one_serve_builtins_only(tmp_path: Path) -> None:
    builtin = {i.name for i in Registry().infos()}
    assert {i.name for i in Registry(models_dir=tmp_path / "absent").infos()} == builtin


def test_a_broken_card_is_skipped_with_a_warning(models: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = models / "broken" / "1"
    make_model(broken, name="broken")
    (broken / "card.json").write_text('{"schema": "nonsense"}', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="plateforge_server"):
        registry = Registry(models_dir=models)
    names = {i.name for i in registry.infos()}
    assert "broken" not in names and {"look-a", "look-b"} <= names
    assert any(str(broken) in r.getMessage() for r in caplog.records)


def test_highest_version_wins_in_natural_order(tmp_path: Path) -> None:
    root = tmp_path / "models"
    make_model(root / "look" / "step200", name="look", version="step200")
    make_model(root / "look" / "step1000", name="look", version="step1000")
    registry = Registry(models_dir=root)
    with registry.use("look") as model:
        assert model.info.version == "step1000"
    with registry.use("look", "step200") as model:
        assert model.info.version == "step200"


def test_refresh_adds_and_drops_models(models: Path) -> None:
    registry = Registry(models_dir=models)
    make_model(models / "look-c" / "2", name="look-c", version="2")
    for path in sorted((models / "look-b").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    served = registry.refresh()
    assert ("look-c", "2") in served and ("look-b", "1") not in served
    with pytest.raises(UnknownModelError, match="look-b"):
        registry.get("look-b")


def test_changed_weights_are_refused_and_other_models_still_served(models: Path) -> None:
    registry = Registry(models_dir=models)
    weights = tamper(models / "look-a" / "1")
    with pytest.raises(ModelIntegrityError) as caught:
        registry.get("look-a")
    assert str(weights) in str(caught.value)
    assert registry.in_use("look-a") == 0  # the failed load released its use
    with registry.use("look-b") as model:
        assert model.loaded


# -- memory budget ---------------------------------------------------------------------------


def test_loading_past_the_budget_unloads_the_least_recently_used(models: Path) -> None:
    make_model(models / "look-c" / "1", name="look-c")
    size = model_bytes(models / "look-a" / "1")
    registry = Registry(models_dir=models, memory_budget_bytes=2 * size)
    with registry.use("passthrough"):
        pass
    for name in ("look-a", "look-b", "look-a"):  # look-a is now the more recent of the two
        with registry.use(name):
            pass
    assert registry.loaded_bytes() == 2 * size
    with registry.use("look-c"):
        pass
    loaded = registry.loaded()
    assert ("look-b", "1") not in loaded  # the least recently used learned model went
    assert {("look-a", "1"), ("look-c", "1"), ("passthrough", "1")} <= set(loaded)
    assert registry.loaded_bytes() == 2 * size


def test_budget_of_one_model_keeps_one_loaded(models: Path) -> None:
    size = model_bytes(models / "look-a" / "1")
    registry = Registry(models_dir=models, memory_budget_bytes=size)
    with registry.use("look-a"):
        pass
    with registry.use("look-b"):
        pass
    learned = [k for k in registry.loaded() if k[0].startswith("look")]
    assert learned == [("look-b", "1")]


def test_a_model_in_use_is_not_unloaded(models: Path) -> None:
    size = model_bytes(models / "look-a" / "1")
    registry = Registry(models_dir=models, memory_budget_bytes=size)
    running, finish = threading.Event(), threading.Event()
    seen: list[object] = []

    def call() -> None:
        with registry.use("look-a") as model:
            running.set()
            finish.wait(30)
            seen.append(model.state)

    worker = threading.Thread(target=call)
    worker.start()
    try:
        assert running.wait(30)
        with registry.use("look-b"):  # over budget, but look-a is running: it stays
            assert {("look-a", "1"), ("look-b", "1")} <= set(registry.loaded())
            assert registry.in_use("look-a") == 1
        # look-b released while look-a still runs: the budget fits one, so the free one goes.
        assert [k for k in registry.loaded() if k[0].startswith("look")] == [("look-a", "1")]
    finally:
        finish.set()
        worker.join(30)
    assert isinstance(seen[0], LearnedState)
    assert registry.in_use("look-a") == 0
    assert registry.loaded_bytes() == size
    with registry.use("look-b"):  # look-a is free now: loading look-b unloads it
        assert [k for k in registry.loaded() if k[0].startswith("look")] == [("look-b", "1")]


def test_a_dropped_handle_releases_its_use(models: Path) -> None:
    registry = Registry(models_dir=models)
    model = registry.get("look-a")
    assert registry.in_use("look-a") == 1
    del model
    assert registry.in_use("look-a") == 0


def test_concurrent_uses_load_once(models: Path) -> None:
    registry = Registry(models_dir=models)
    states: list[object] = []
    lock = threading.Lock()

    def call() -> None:
        with registry.use("look-a") as model, lock:
            states.append(model.state)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(states) == 6 and all(s is states[0] for s in states)
    assert registry.in_use("look-a") == 0


# -- the default models directory ------------------------------------------------------------


def test_default_models_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_models_dir() == tmp_path / "plateforge" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert user_data_dir() == Path.home() / ".local" / "share" / "plateforge"


# -- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("served") / "models"
    make_model(root / "look-a" / "1", name="look-a")
    make_model(root / "fill" / "1", name="fill", mask=True)
    make_model(root / "tampered" / "1", name="tampered")
    tamper(root / "tampered" / "1")
    broken = root / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "card.json").write_text("{", encoding="utf-8")
    server = start_server("--models-dir", str(root), "--memory-budget-gb", "1")
    yield server, root
    server.stop()


def test_server_lists_and_runs_a_learned_model(served: tuple[ServerProcess, Path]) -> None:
    server, root = served
    with Client(server.address, token=server.token, timeout=60.0, retries=1) as client:
        infos = {i.name: i for i in client.list_models()}
        assert {"look-a", "fill", "tampered", "passthrough"} <= set(infos)
        assert "broken" not in infos
        assert [p.name for p in infos["look-a"].parameters] == ["strength"]
        source = plate()
        result = client.process("look-a", {"plate": source})
    out = result.outputs["image"]
    assert_same_frame(out, source, attributes=False)  # identity net: the plate, bit for bit
    card = read_model_card(root / "look-a" / "1", verify=False)
    assert result.provenance["plateforge/modelHash"] == card["weights_sha256"]


def test_server_runs_a_mask_model(served: tuple[ServerProcess, Path]) -> None:
    server, _ = served
    source = plate()
    mask_input, mask = mask_frame(source)
    with Client(server.address, token=server.token, timeout=60.0, retries=1) as client:
        out = client.process("fill", {"plate": source, "mask": mask_input}).outputs["image"]
    outside = mask == 0
    for name in source.channels:
        want = source.channels[name]
        got = out.channels[name]
        assert got.dtype == want.dtype
        if name in ("R", "G", "B"):
            assert np.array_equal(got[outside].view(np.uint16), want[outside].view(np.uint16)), name
            assert np.all(got[mask == 1] == 0), name
        else:
            assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), name


def test_server_refuses_changed_weights_and_keeps_serving(served: tuple[ServerProcess, Path]) -> None:
    server, root = served
    with Client(server.address, token=server.token, timeout=60.0, retries=1) as client:
        with pytest.raises(ModelIntegrityError) as caught:
            client.process("tampered", {"plate": plate()})
        assert str(root / "tampered" / "1" / "model.safetensors") in str(caught.value)
        out = client.process("passthrough", {"plate": plate()}).outputs["image"]
        assert_same_frame(out, plate(), attributes=False)
    assert server.process.poll() is None


def test_server_warns_about_the_broken_folder(served: tuple[ServerProcess, Path]) -> None:
    server, root = served
    broken = str(root / "broken" / "1")
    deadline = time.monotonic() + 10
    while not any(broken in line for line in server.stderr_lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(broken in line and "skipping" in line for line in server.stderr_lines)


def test_server_finds_models_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_model(tmp_path / "look-env" / "3", name="look-env", version="3")
    monkeypatch.setenv("PLATEFORGE_MODELS_DIR", str(tmp_path))
    server = start_server()
    try:
        with Client(server.address, token=server.token, timeout=60.0, retries=1) as client:
            assert "look-env" in {i.name for i in client.list_models()}
    finally:
        server.stop()
