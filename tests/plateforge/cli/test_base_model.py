"""plateforge base-model licence / verify / install on the tiny random pipeline, then a real server
process with that models directory listing it through a real `plateforge models --json`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plateforge.cli.main import main
from plateforge_server.generative import LICENCE_FILE
from tests.conftest import TOKEN, start_server

# The generative tests' fixtures (the tiny pipeline, the network guard), shared rather than copied.
from tests.plateforge_server.generative.conftest import (  # noqa: F401
    HOLDER,
    LICENCE,
    needs_generative,
    no_network,
    tiny_pipeline,
    tiny_pipeline_master,
)

needs_generative()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["base-model", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_licence_verify_install_and_serve(
    tiny_pipeline: Path,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tiny_pipeline
    (folder / LICENCE_FILE).unlink()  # start from a bare pipeline folder
    code, _, err = _cli(capsys, "verify", str(folder))
    assert code == 2 and "has no licence record" in err and LICENCE_FILE in err

    code, out, _ = _cli(
        capsys, "licence", str(folder), "--name", "tiny-cli", "--licence", LICENCE, "--holder", HOLDER,
        "--uses", "infer,train", "--json",
    )  # fmt: skip
    assert code == 0
    record = json.loads(out)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert record["record"] == str((folder / LICENCE_FILE).absolute()) and (folder / LICENCE_FILE).is_file()
    assert record["files"] == len(files) - 1 >= 8  # every file but the record itself
    # The printed hash names these exact bytes: SHA-256 over the sorted "<file> <sha256>" lines.
    lines = "".join(
        f"{f} {hashlib.sha256((folder / f).read_bytes()).hexdigest()}\n" for f in files if f != LICENCE_FILE
    )
    assert record["sha256"] == hashlib.sha256(lines.encode()).hexdigest()

    code, out, _ = _cli(capsys, "verify", str(folder), "--uses", "infer,train", "--json")
    assert code == 0
    verified = json.loads(out)
    assert verified == {
        "folder": str(folder.absolute()),
        "name": "tiny-cli",
        "licence": LICENCE,
        "rights_holder": HOLDER,
        "permitted_uses": ["train", "infer"],
        "files": record["files"],
        "sha256": record["sha256"],
    }
    code, out, _ = _cli(capsys, "verify", str(folder))
    assert code == 0 and f"sha256: {record['sha256']}" in out and "permitted uses: train, infer" in out
    code, _, err = _cli(capsys, "verify", str(folder), "--uses", "distribute")
    assert code == 2 and "may not be used to distribute" in err

    # One byte changed in one file: refused, naming the file; put back: accepted again.
    config = folder / "unet" / "config.json"
    original = config.read_bytes()
    config.write_bytes(original + b" ")
    code, out, err = _cli(capsys, "verify", str(folder))
    assert code == 2 and out == "" and "'unet/config.json'" in err and "(changed)" in err
    code, _, err = _cli(capsys, "install", str(folder), "--name", "gen-cli", "--models-dir", str(tmp_path / "no"))
    assert code == 2 and "'unet/config.json'" in err and not (tmp_path / "no").exists()
    config.write_bytes(original)

    # Installed into $PLATEFORGE_MODELS_DIR, the directory a server started without --models-dir serves.
    models = tmp_path / "models"
    monkeypatch.setenv("PLATEFORGE_MODELS_DIR", str(models))
    code, out, _ = _cli(capsys, "install", str(folder), "--name", "gen-cli", "--version", "3")
    assert code == 0 and out.strip() == str(models / "gen-cli" / "3")
    code, _, err = _cli(capsys, "install", str(folder), "--name", "../gen", "--models-dir", str(models))
    assert code == 2 and "must be a plain name" in err
    card = (models / "gen-cli" / "3" / "model.safetensors").read_bytes()
    code, _, err = _cli(capsys, "install", str(folder), "--name", "gen-cli", "--version", "3")
    assert code == 2 and "already installed" in err and "--force" in err
    code, _, _ = _cli(capsys, "install", str(folder), "--name", "gen-cli", "--version", "3", "--force")
    assert code == 0 and (models / "gen-cli" / "3" / "model.safetensors").read_bytes() == card

    proc = start_server()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
        listing = subprocess.run(
            [
                sys.executable,
                "-m",
                "plateforge.cli.main",
                "models",
                "--json",
                "--server",
                proc.address,
                "--token",
                TOKEN,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        assert proc.stop() == 0
    assert listing.returncode == 0, listing.stderr
    served = {m["name"]: m for m in json.loads(listing.stdout)}
    model = served["gen-cli"]
    assert model["version"] == "3" and model["tool"] == "generative-fill"
    assert [i["name"] for i in model["inputs"]] == ["plate", "mask"]
    assert "tiny-cli" in model["provenance"]


def test_help_and_bad_uses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--help"]) == 0
    assert "base-model" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["base-model", "verify", "--help"])
    assert exit_info.value.code == 0
    code, _, err = _cli(
        capsys, "licence", str(tmp_path), "--name", "x", "--licence", "MIT", "--holder", "H", "--uses", "sell"
    )
    assert code == 2 and "known uses" in err
    code, _, err = _cli(capsys, "licence", str(tmp_path), "--name", "x", "--licence", "MIT", "--holder", "H")
    assert code == 2 and "not a diffusers pipeline folder" in err


#: Runs the CLI in a Python where torch cannot be imported (as on a host without the [server] extra).
WITHOUT_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'diffusers'}:
            raise ImportError('no module named ' + name)
sys.meta_path.insert(0, Block())
from plateforge.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_torch_verify_works_and_install_names_the_extra(tiny_pipeline_master: Path, tmp_path: Path) -> None:  # noqa: F811
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", WITHOUT_TORCH, "base-model", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    verified = run("verify", str(tiny_pipeline_master))
    assert verified.returncode == 0 and "name: tiny-inpaint" in verified.stdout, verified.stderr
    refused = run("install", str(tiny_pipeline_master), "--name", "gen", "--models-dir", str(tmp_path / "models"))
    assert refused.returncode == 2 and "needs the [server] extra" in refused.stderr and "pip install" in refused.stderr
    assert not (tmp_path / "models").exists()
