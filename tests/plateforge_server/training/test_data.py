from __future__ import annotations

import re
from pathlib import Path

import pytest

from plateforge.errors import LicenceError
from plateforge_server.training import train
from tests.plateforge_server.training.helpers import fast, write_pairs


def _break(manifest: Path, how: str) -> str:
    """Damage the dataset one way; return the file name the refusal must mention."""
    text = manifest.read_text(encoding="utf-8")
    if how == "no-licence":
        manifest.write_text(text.replace('licence = "CC-BY-4.0"', 'licence = "NONE"', 1), encoding="utf-8")
        return "in/img.1001.exr"
    if how == "forbidden":
        first, rest = text.split('permitted_uses = ["train"]', 1)
        rest = rest.replace('permitted_uses = ["train"]', 'permitted_uses = ["evaluate"]', 1)
        manifest.write_text(first + 'permitted_uses = ["train"]' + rest, encoding="utf-8")
        return "out/img.1001.exr"
    if how == "missing":
        (manifest.parent / "out" / "img.1002.exr").unlink()
        return "out/img.1002.exr"
    if how == "changed":
        with open(manifest.parent / "in" / "img.1003.exr", "ab") as stream:
            stream.write(b"\0")
        return "in/img.1003.exr"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("no-licence", id="no-licence"),
        pytest.param("forbidden", id="training-not-permitted"),
        pytest.param("missing", id="missing-file"),
        pytest.param("changed", id="changed-since-registered"),
    ],
)
def test_unusable_source_refused_before_training(tmp_path: Path, how: str) -> None:
    manifest = write_pairs(tmp_path / "data", frames=3, size=32)
    name = _break(manifest, how)
    steps: list[int] = []
    with pytest.raises(LicenceError, match=re.escape(name)):
        train(fast(), manifest_path=manifest, out_dir=tmp_path / "run", progress=lambda p: steps.append(p.step))
    assert steps == []
    assert not (tmp_path / "run").exists()
