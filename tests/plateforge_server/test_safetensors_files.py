"""Model export and checkpoints are deterministic: the same tensors and card give the same bytes,
in any process. safetensors orders its metadata by a per-process hash seed, so each save below
runs in its own process (with a different PYTHONHASHSEED too) and several saves run in each."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from plateforge.errors import PlateforgeError
from plateforge_server.modelcard import load_weights, save_model, verify_model
from plateforge_server.safetensors_files import canonical_header, save_file
from tests.conftest import REPO

#: Saves a model folder and a training checkpoint SAVES times into OUT/<n>/, with a fixed card.
SAVE_SCRIPT = """
import dataclasses, sys
from pathlib import Path
import torch
from plateforge_server.modelcard import save_model
from plateforge_server.training.checkpoints import save_checkpoint
from tests.plateforge_server.test_modelcard import tiny_card, tiny_tensors

out, saves = Path(sys.argv[1]), int(sys.argv[2])
card = dataclasses.replace(tiny_card(), created="2026-01-02T03:04:05Z")
for n in range(saves):
    save_model(out / str(n) / "model", tensors=tiny_tensors(), card=card)
    save_checkpoint(
        out / str(n) / "ckpt", step=10, model=tiny_tensors(),
        optimizer={"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.001, "params": [0]}]},
        rng={"cpu": torch.arange(8, dtype=torch.uint8)}, state={"dataset": "sh010", "epoch": 1, "seed": 5},
    )
"""


def _save_in_process(out: Path, *, hash_seed: str, saves: int) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", SAVE_SCRIPT, str(out), str(saves)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_two_processes_write_the_same_bytes(tmp_path: Path) -> None:
    _save_in_process(tmp_path / "a", hash_seed="1", saves=4)
    _save_in_process(tmp_path / "b", hash_seed="2", saves=4)
    files = {}
    for run in ("a", "b"):
        for n in range(4):
            files[f"{run}/{n}"] = _digests(tmp_path / run / str(n))
    first = files["a/0"]
    assert sorted(first) == ["ckpt/ckpt-00000010.safetensors", "model/card.json", "model/model.safetensors"]
    different = {name: digests for name, digests in files.items() if digests != first}
    assert not different, f"saves differ from a/0 {first}: {different}"
    # And the file is still what it claims: the card's hash, tensors back exactly.
    verify_model(tmp_path / "b" / "3" / "model")
    tensors = load_weights(tmp_path / "b" / "3" / "model")
    from tests.plateforge_server.test_modelcard import tiny_tensors

    assert all(torch.equal(tensors[k], v) for k, v in tiny_tensors().items())


def _header(path: Path) -> bytes:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + length]


def test_metadata_is_sorted_and_the_data_untouched(tmp_path: Path) -> None:
    tensors = {"b": torch.arange(6, dtype=torch.float32), "a": torch.ones(3, dtype=torch.float16)}
    metadata = {f"key{i}": f"value {i} ✓" for i in (5, 3, 9, 1, 7)} | {"format": "pt"}
    plain, sorted_file = tmp_path / "plain.safetensors", tmp_path / "sorted.safetensors"
    safetensors.torch.save_file(tensors, str(plain), metadata=metadata)
    save_file(tensors, sorted_file, metadata=metadata)
    header = json.loads(_header(sorted_file))
    assert list(header["__metadata__"]) == sorted(metadata) and header["__metadata__"] == metadata
    assert len(_header(plain)) == len(_header(sorted_file))
    assert plain.read_bytes()[8 + len(_header(plain)) :] == sorted_file.read_bytes()[8 + len(_header(plain)) :]
    loaded = safetensors.torch.load_file(str(sorted_file))
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    with safetensors.safe_open(str(sorted_file), framework="pt") as opened:
        assert opened.metadata() == metadata


def test_canonical_header_refuses_what_it_cannot_fit() -> None:
    assert canonical_header(b'{"__metadata__":{"b":"1","a":"2"}}  ') == b'{"__metadata__":{"a":"2","b":"1"}}  '
    assert canonical_header(b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}') == (
        b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    )
    with pytest.raises(PlateforgeError, match="longer than"):
        canonical_header(b'{"t":{"shape":[1E400]}}')  # not safetensors' JSON: 1E400 comes back as Infinity
    with pytest.raises(PlateforgeError, match="JSON object"):
        canonical_header(b"[1, 2]")


def test_save_model_twice_in_one_process_is_the_same_file(tmp_path: Path) -> None:
    import dataclasses

    from tests.plateforge_server.test_modelcard import tiny_card, tiny_tensors

    card = dataclasses.replace(tiny_card(), created="2026-01-02T03:04:05Z")
    first = save_model(tmp_path / "one", tensors=tiny_tensors(), card=card).read_bytes()
    for n in range(6):
        assert save_model(tmp_path / f"again{n}", tensors=tiny_tensors(), card=card).read_bytes() == first
