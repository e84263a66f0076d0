"""`plateforge demo --train`: the learned cleanup trained on the demo shot as a server job and
served next to cleanup-classical (the full-length comparison is bench/training.py's), and the
learned matte trained on the matte shot's keyframe mattes next to matte-classical (the full-length
comparison is bench/quality.py's)."""

from __future__ import annotations

import json
from pathlib import Path

from plateforge.exr import read_exr_header
from tests.plateforge.cli.test_cli import plateforge


def test_demo_trains_serves_and_scores_a_learned_cleanup(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = plateforge(
        "demo", "--out", str(out), "--frames", "5", "--train", "--train-steps", "3", "--matte-train-steps", "3",
        "--json", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    learned = figures["learned"]
    assert learned["model"] == "demo-cleanup" and learned["train_steps"] == 3
    # Three steps barely move a net that starts as the classical cleanup: the two must agree
    # closely, which proves the served model builds its inputs and composite as training did.
    classical = figures["psnr_in_mask_db"]["mean"]
    assert abs(learned["psnr_in_mask_db"]["mean"] - classical) < 0.5
    assert learned["psnr_in_mask_db"]["mean"] > figures["psnr_in_mask_before_cleanup_db"]["mean"] + 5
    assert "demo-cleanup" in result.stdout and "contact sheet" in result.stdout

    frames = sorted((out / "learned").glob("learned.*.exr"))
    assert len(frames) == 5
    attributes = read_exr_header(frames[0])[0].attributes
    assert attributes["plateforge/model"] == "demo-cleanup" and attributes["plateforge/tool"] == "cleanup"
    # The model went into the demo's own models folder, not the user's.
    cards = list((out / "models").glob("demo-cleanup/*/card.json"))
    assert len(cards) == 1
    card = json.loads(cards[0].read_text())
    assert card["net"]["arch"] == "guided-unet"
    assert {s["path"] for s in card["sources"]} >= {"plate.1001.exr", "mask.1001.exr"}
    assert all(s["licence"] == "CC0-1.0" for s in card["sources"])
    assert not any("clean" in s["path"] for s in card["sources"])  # never the ground truth

    # The matte half: matte-classical keyed and composited the matte shot; the learned matte was
    # trained on three keyframe mattes as a job, served, and scored on the other frames.
    matte = figures["matte"]
    assert matte["model"] == "matte-classical" and len(matte["frames"]) == 5
    assert 0 < matte["sad"] < 5 and matte["psnr_composite_db"] > 25
    trained = matte["learned"]
    assert trained["model"] == "demo-matte" and trained["train_steps"] == 3 and len(trained["keyframes"]) == 3
    # Three steps barely move a net that starts as the key (and only inside the key's unknown band).
    assert abs(trained["sad"] - matte["sad"]) < 0.25 * matte["sad"]
    assert isinstance(trained["beats_classical"], bool) and "learned matte (demo-matte" in result.stdout
    assert len(sorted((out / "matte" / "learned").glob("composite.*.exr"))) == 8
    (matte_card,) = (out / "models").glob("demo-matte/*/card.json")
    assert json.loads(matte_card.read_text())["net"]["arch"] == "matte-unet"
    assert (out / "matte" / "contact_sheet.png").stat().st_size > 0
