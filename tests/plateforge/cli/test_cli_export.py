"""plateforge export (the CLI verb) against a real server, and plateforge provenance on the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plateforge.cli.main import main
from tests.plateforge_server.export.helpers import TOKEN, serve_models, train_all

pytestmark = pytest.mark.slow


def test_export_writes_the_files_and_provenance_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLATEFORGE_SERVER", raising=False)
    (model,) = train_all(tmp_path / "t", only=("look",))
    card = json.loads((model.folder / "card.json").read_text())
    with serve_models(tmp_path / "t" / "models") as address:
        server = ["--server", address, "--token", TOKEN]
        for fmt, names in (
            ("flame", {"x-look.onnx", "x-look.json", "README.md"}),
            ("nuke", {"x-look.pt", "card.json", "catfilecreator.json", "README.md"}),
        ):
            out = tmp_path / fmt
            assert main(["export", model.name, "--format", fmt, "--output", str(out), *server]) == 0
            printed = capsys.readouterr().out.split()
            assert {Path(p).name for p in printed} == names == {p.name for p in out.iterdir()}
        assert main(["export", "nope", "--format", "onnx", "--output", str(tmp_path / "x"), *server]) == 2
        assert "no model 'nope'" in capsys.readouterr().err
    # No --server: the command starts a private local server over $PLATEFORGE_MODELS_DIR, as other verbs do.
    monkeypatch.setenv("PLATEFORGE_MODELS_DIR", str(tmp_path / "t" / "models"))
    monkeypatch.setenv("PLATEFORGE_JOBS_DIR", str(tmp_path / "local-jobs"))
    monkeypatch.delenv("PLATEFORGE_TOKEN", raising=False)
    assert main(["export", f"{model.name}@{card['version']}", "--format", "onnx", "--output", str(tmp_path / "o")]) == 0
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"x-look.onnx", "README.md"}
    capsys.readouterr()
    sidecar = json.loads((tmp_path / "flame" / "x-look.json").read_text())
    assert sidecar["ModelDescription"]["Name"] == f"{card['name']}@{card['version']}"
    knobs = json.loads((tmp_path / "nuke" / "catfilecreator.json").read_text())["knobs"]
    assert knobs["channelsIn"] == "rgba.red, rgba.green, rgba.blue" and knobs["torchScriptFile"] == "x-look.pt"
    for exported in (tmp_path / "flame" / "x-look.onnx", tmp_path / "nuke" / "x-look.pt"):
        assert main(["provenance", str(exported), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)[str(exported)]
        assert report["card"] == card and report["weights_sha256"] == card["weights_sha256"]
        assert main(["provenance", str(exported)]) == 0
        text = capsys.readouterr().out
        assert "the weights this export was made from" in text and "permitted uses train, distribute" in text


def test_a_bad_format_or_reference_needs_no_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "m", "--format", "coreml", "--output", str(tmp_path)])
    assert main(["export", "bad name!", "--format", "onnx", "--output", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        pytest.param("m.onnx", b"\x0a\xff\xff", "not an ONNX file", id="truncated-onnx"),
        pytest.param("m.onnx", b"\x08\x07", "carries no plateforge model card", id="onnx-without-card"),
        pytest.param("m.pt", b"PK\x03\x04", "has no card.json beside it", id="torchscript-without-card"),
    ],
)
def test_provenance_of_an_export_without_a_readable_card_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, said: str
) -> None:
    (tmp_path / name).write_bytes(data)
    assert main(["provenance", str(tmp_path / name)]) == 2
    assert said in capsys.readouterr().err
