"""docs/lineage-credits.png, the README's picture of the credits page, against what
scripts/credits_page.py makes now: the script runs end to end (real training, processing and
indexing, then Debian's Chromium through Playwright), the rows its picture holds are the index's,
the bars it shows are those rows' frames, and the committed picture holds the same rows and bars.
The regenerated picture is kept as build/test-artefacts/lineage-credits.png."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.plateforge_server.status.test_browser import ARTEFACTS, chromium

SCRIPT = REPO / "scripts" / "credits_page.py"
COMMITTED = REPO / "docs" / "lineage-credits.png"
CHUNK = "plateforge:credits"
#: The credits page's bar fill (#3b7dd8) and its longest bar in CSS pixels (plateforge.lineage._report).
BAR = np.array([59, 125, 216])
FULL_BAR = 420


def rows_of(png: Path) -> list[dict[str, Any]]:
    with Image.open(png) as image:
        text = image.info.get(CHUNK)
    assert isinstance(text, str), f"{png} holds no {CHUNK} text chunk"
    rows: list[dict[str, Any]] = json.loads(text)
    return rows


def bars_of(png: Path) -> list[int]:
    """The widths of the bars drawn in ``png``, top to bottom: runs of rows holding the bar colour."""
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    per_row = (np.abs(pixels - BAR).max(axis=2) <= 8).sum(axis=1)
    widths: list[int] = []
    inside = False
    for count in per_row:
        if count and not inside:
            widths.append(0)
        if count:
            widths[-1] = max(widths[-1], int(count))
        inside = bool(count)
    return widths


def drawn(rows: list[dict[str, Any]]) -> list[int]:
    """The bar widths the page draws for ``rows`` (a contributor with no frames has none)."""
    top = max(r["frames"] for r in rows) or 1
    return [w for w in (round(FULL_BAR * r["frames"] / top) for r in rows) if w]


def close(measured: list[int], expected: list[int]) -> bool:
    return len(measured) == len(expected) and all(abs(m - e) <= 1 for m, e in zip(measured, expected, strict=True))


def unversioned(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without the models' versions (which step a run publishes is the run's own choice)."""
    return [r | {"models": [m.partition("@")[0] for m in r["models"]]} for r in rows]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The picture the script makes now, and the folder of the show it built."""
    folder = tmp_path_factory.mktemp("credits")
    png, work = folder / "lineage-credits.png", folder / "show"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env |= {"PLATEFORGE_CHROMIUM": chromium(), "OMP_NUM_THREADS": "1", "PLATEFORGE_TORCH_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(png), "--work", str(work)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, ARTEFACTS / "lineage-credits.png")
    return png, work


def test_the_script_draws_the_credits_the_index_holds(regenerated: tuple[Path, Path]) -> None:
    png, work = regenerated
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "plateforge.cli.main", "lineage", "credits", "--format", "json",
         "--db", str(work / "lineage.sqlite")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    indexed = json.loads(done.stdout)
    for row in indexed:
        row["shots"] = [os.path.relpath(shot, work) for shot in row["shots"]]
    assert rows_of(png) == indexed
    # The show the script's docstring describes: the fine-tune credits sh010's artists too.
    assert [(r["name"], r["frames"], len(r["shots"])) for r in indexed] == [
        ("Ana Ruiz", 60, 4), ("Ben Okafor", 60, 4), ("Cleo Park", 24, 2), ("Eve Laurent", 24, 2), ("Dev Shah", 0, 0),
    ]  # fmt: skip
    assert [m.partition("@")[0] for m in indexed[0]["models"]] == ["sh010-look", "sh020-look"]
    assert close(bars_of(png), drawn(indexed)), (bars_of(png), drawn(indexed))


def test_the_committed_picture_is_what_the_script_makes(regenerated: tuple[Path, Path]) -> None:
    png, _ = regenerated
    committed = rows_of(COMMITTED)
    assert unversioned(committed) == unversioned(rows_of(png))
    assert close(bars_of(COMMITTED), drawn(committed)), (bars_of(COMMITTED), drawn(committed))
    with Image.open(COMMITTED) as old, Image.open(png) as new:
        assert old.size[0] == new.size[0] and abs(old.size[1] - new.size[1]) <= 0.1 * new.size[1], (old.size, new.size)
    assert COMMITTED.stat().st_size < 300_000


@pytest.mark.parametrize(
    ("frames", "widths"),
    [
        pytest.param([60, 60, 24, 0], [420, 420, 168], id="longest-is-full"),
        pytest.param([0, 0], [], id="no-frames"),
    ],
)
def test_bars_are_measured_as_drawn(tmp_path: Path, frames: list[int], widths: list[int]) -> None:
    # The measure itself, on a picture drawn here: bars of the page's colour on white, 24 px apart.
    rows = [{"frames": f} for f in frames]
    assert drawn(rows) == widths
    canvas = np.full((24 * len(frames) + 10, 600, 3), 255, np.uint8)
    for i, width in enumerate(widths):
        canvas[5 + 24 * i + 3 : 5 + 24 * i + 19, 100 : 100 + width] = BAR
    Image.fromarray(canvas).save(tmp_path / "bars.png")
    assert bars_of(tmp_path / "bars.png") == widths
