"""Host-written manifests read back by the server's own reader, whatever the names hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.manifest_format import check_for_training, load_manifest
from plateforge.manifests import Contributor, Source, manifest_text, write_manifest


def test_written_manifest_reads_back_exactly(tmp_path: Path) -> None:
    odd = 'plate "A"\\b\u00e9\x7f.1001.exr'
    write_exr(tmp_path / odd, Frame.from_array(np.zeros((4, 4, 3), np.float32), names=("R", "G", "B")))
    sources = [Source(odd, 'LicenseRef-x "q"', "ACME\tPictures", ("train", "evaluate"), "plate")]
    path = write_manifest(tmp_path / "m.toml", name="sh010 \u2014 ok", sources=sources, comment="line one\nline two")
    assert path.read_text(encoding="utf-8").startswith("# line one\n# line two\n")
    manifest = load_manifest(path)
    assert manifest.name == "sh010 \u2014 ok"
    (source,) = manifest.sources
    assert (source.path, source.licence, source.rights_holder, source.role) == (
        odd,
        'LicenseRef-x "q"',
        "ACME\tPictures",
        "plate",
    )
    assert tuple(source.permitted_uses) == ("train", "evaluate")
    assert [f.name for f in check_for_training(manifest)] == [odd]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file, nothing left


def test_role_is_optional() -> None:
    text = manifest_text(name="n", sources=[Source("a.exr", "CC0-1.0", "me")])
    assert "role" not in text and 'permitted_uses = ["train"]' in text


def test_contributors_are_written_and_read_back(tmp_path: Path) -> None:
    people = (Contributor('Zoë "Z" Ōta', "keyframe matte"), Contributor("studio:4411", "paint fix"))
    path = write_manifest(
        tmp_path / "m.toml", name="n", sources=[Source("a.exr", "CC0-1.0", "me", contributors=people)]
    )
    (source,) = load_manifest(path).sources
    assert source.contributors == people


@pytest.mark.parametrize(
    ("name", "role"),
    [
        pytest.param("", "grade", id="empty-name"),
        pytest.param("Ana", "  ", id="blank-role"),
        pytest.param("Ana\nRuiz", "grade", id="newline"),
        pytest.param("A" * 201, "grade", id="too-long"),
    ],
)
def test_a_contributor_needs_a_name_and_a_role(name: str, role: str) -> None:
    with pytest.raises(ValueError, match="a contributor's"):
        Contributor(name, role)
