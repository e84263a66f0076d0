"""Make docs/lineage-credits.png, the README's picture of ``plateforge lineage credits``: a small
show built by the real commands, indexed, and its credits page drawn by headless Chromium.

  python scripts/credits_page.py [--output docs/lineage-credits.png] [--work DIR]

The show, in --work (else a temporary folder, removed after):

    data/sh010  plates by Ben Okafor (plate photography), grade keyframes by Ana Ruiz (grade)
    data/sh020  plates by Eve Laurent (plate photography), grade keyframes by Cleo Park (grade)
    data/sh030  plates with Dev Shah's paint fixes: no model is trained on them yet
    sh010-look  `plateforge train --tool look` on sh010's keyframes
    sh020-look  `plateforge train --init sh010-look` on sh020's: a fine-tune
    out/        `plateforge process`: sh010-look over sh010 (24 frames) and sh011 (12);
                sh020-look over sh020 (16) and sh021 (8)

then ``plateforge lineage index`` and ``plateforge lineage credits --format html`` (and
``--format json``). Chromium (Debian's, driven by Playwright; $PLATEFORGE_CHROMIUM, else
``chromium`` on PATH; never ``playwright install``) loads the page; the table it shows is checked
against the JSON before the screenshot is taken, and the JSON (shots relative to the show) is
kept in the PNG as the text chunk ``plateforge:credits``, so tests/plateforge/lineage/test_credits_page.py
can check a regenerated picture against the committed one. Runs in about a minute on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: The PNG text chunk holding the page's rows.
CHUNK = "plateforge:credits"
#: Tiny training runs: the picture is about lineage, not about the models' quality.
FAST = ["--steps", "4", "--param", "batch=1", "--param", "crop=16", "--param", "warmup=1"]
FAST += ["--param", "validation_size=32", "--param", "lr=0.001"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WIDTH, HEIGHT = 64, 36


def _plates(folder: Path, name: str, frames: range, seed: int, grade: tuple[float, float, float] | None = None) -> None:
    """Smooth plates with a moving disc; ``grade`` multiplies R, G, B (the artist's grade)."""
    from plateforge.exr import write_exr
    from plateforge.frames import Frame

    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.6, size=3).astype(np.float32)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    for i, number in enumerate(frames):
        ramp = (x / WIDTH)[..., None] * base + (y / HEIGHT)[..., None] * base[::-1] * 0.5
        disc = ((x - 8 - 2 * i % WIDTH) ** 2 + (y - HEIGHT / 2) ** 2 < 64)[..., None] * np.float32(0.4)
        image = (ramp + disc + rng.normal(0, 0.01, size=(HEIGHT, WIDTH, 3))).astype(np.float32).clip(0.0, None)
        if grade is not None:
            image = image * np.asarray(grade, np.float32)
        write_exr(folder / f"{name}.{number}.exr", Frame.from_array(image, names=("R", "G", "B")))


def _dataset(
    folder: Path, name: str, seed: int, grade: tuple[float, float, float], inputs: Any, targets: Any = ()
) -> Path:
    from plateforge.manifest_format import register
    from plateforge.manifests import Source, write_manifest

    keys = range(1001, 1003)
    _plates(folder / "plates", "plate", keys, seed)
    _plates(folder / "graded", "graded", keys, seed, grade)
    sources = [
        Source("plates/plate.*.exr", "LicenseRef-show", "Show Pictures", ("train",), "input", contributors=inputs),
        Source("graded/graded.*.exr", "LicenseRef-show", "Show Pictures", ("train",), "target", contributors=targets),
    ]
    manifest = write_manifest(folder / "dataset.toml", name=name, sources=sources)
    register(manifest)
    return manifest


def _run(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "plateforge.cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"plateforge {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def build_show(work: Path) -> list[dict[str, Any]]:
    """Make the show in ``work``, index it into ``work/lineage.sqlite``, write ``work/credits.html``;
    return the credits rows (``credits --format json``) with shots relative to ``work``."""
    from plateforge.manifests import Contributor

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env |= {"PLATEFORGE_MODELS_DIR": str(work / "models"), "PLATEFORGE_JOBS_DIR": str(work / "jobs")}
    env.setdefault("OMP_NUM_THREADS", "1")
    data = work / "data"
    sh010 = _dataset(data / "sh010", "sh010", 10, (1.15, 1.0, 0.8), (Contributor("Ben Okafor", "plate photography"),),
                     (Contributor("Ana Ruiz", "grade"),))  # fmt: skip
    sh020 = _dataset(data / "sh020", "sh020", 20, (0.85, 0.95, 1.2), (Contributor("Eve Laurent", "plate photography"),),
                     (Contributor("Cleo Park", "grade"),))  # fmt: skip
    _dataset(data / "sh030", "sh030", 30, (1.0, 1.0, 1.0), (Contributor("Dev Shah", "paint fix"),))
    first = _run(env, work, "train", "--dataset", str(sh010), "--tool", "look", "--name", "sh010-look", *FAST, "-q")
    model_a = first.strip().splitlines()[-1]
    _run(env, work, "train", "--dataset", str(sh020), "--tool", "look", "--name", "sh020-look", "--init", model_a,
         *FAST, "-q")  # fmt: skip
    outputs = [("sh010-look", "sh010", 24), ("sh010-look", "sh011", 12)]
    outputs += [("sh020-look", "sh020", 16), ("sh020-look", "sh021", 8)]
    for model, shot, frames in outputs:
        last = 1000 + frames
        _plates(work / "plates" / shot, shot, range(1001, last + 1), seed=int(shot[2:]))
        _run(env, work, "process", "--model", model, "--input", f"plates/{shot}/{shot}.####.exr",
             "--frames", f"1001-{last}", "--output", f"out/{shot}/{shot}_look.####.exr", "-q")  # fmt: skip
    _run(env, work, "lineage", "index", ".", "--db", "lineage.sqlite")
    _run(env, work, "lineage", "credits", "--format", "html", "--output", "credits.html", "--db", "lineage.sqlite")
    rows: list[dict[str, Any]] = json.loads(_run(env, work, "lineage", "credits", "--format", "json", "--db",
                                                 "lineage.sqlite"))  # fmt: skip
    for row in rows:
        row["shots"] = [os.path.relpath(shot, work) for shot in row["shots"]]
    return rows


def chromium() -> str:
    """Debian's Chromium: $PLATEFORGE_CHROMIUM, else ``chromium`` on PATH."""
    found = os.environ.get("PLATEFORGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        raise SystemExit(f"no Chromium at {found}: apt-get install chromium, or set PLATEFORGE_CHROMIUM")
    return found


def screenshot(page_file: Path, rows: list[dict[str, Any]], output: Path) -> None:
    """Draw ``page_file`` in headless Chromium into ``output`` (PNG), after checking that the
    table it shows is ``rows``; keep ``rows`` in the PNG."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 780, "height": 400}, device_scale_factor=1)
            page.goto(page_file.resolve().as_uri())
            shown = page.eval_on_selector_all(
                "#credits tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
            )
            expected = [[r["name"], ", ".join(r["roles"]), "\n".join(r["models"]), str(r["frames"]),
                         str(len(r["shots"]))] for r in rows]  # fmt: skip
            if shown != expected:
                raise SystemExit(f"the page shows {shown}, the index says {expected}")
            raw = output.with_suffix(".raw.png")
            page.screenshot(path=str(raw), full_page=True)
        finally:
            browser.close()
    info = PngInfo()
    info.add_text(CHUNK, json.dumps(rows, sort_keys=True))
    with Image.open(raw) as image:
        image.convert("RGB").save(output, pnginfo=info, optimize=True)
    raw.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "lineage-credits.png")
    parser.add_argument("--work", type=Path, help="make the show here (an empty or new folder), and keep it")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="plateforge-credits-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            raise SystemExit(f"--work {work} is not empty")
        rows = build_show(work.resolve())
        args.output.parent.mkdir(parents=True, exist_ok=True)
        screenshot(work / "credits.html", rows, args.output)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
