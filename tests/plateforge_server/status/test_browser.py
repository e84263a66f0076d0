"""The status page in a real browser: Debian's Chromium, driven by Playwright, loads the page
from a real server process while a training job runs, sees the job's row update and its loss
picture appear, and saves a screenshot (build/test-artefacts/status-page.png).

Chromium comes from the system (``apt-get install chromium``; .ci/run installs it), never from
``playwright install``. Where it is absent the test FAILS, saying so, so a CI that lost the
browser cannot pass; set ``PLATEFORGE_SKIP_BROWSER_TESTS=1`` to skip it knowingly instead.
``PLATEFORGE_CHROMIUM`` names another Chromium binary.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.frames import Frame
from plateforge.jobs_client import TrainingClient
from tests.conftest import REPO, TOKEN
from tests.plateforge_server.status.helpers import start_status_server
from tests.plateforge_server.training.helpers import write_pairs

ARTEFACTS = REPO / "build" / "test-artefacts"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Long enough to watch (a few seconds on one CPU thread), pictures every few steps.
SLOW = {
    "steps": 400,
    "batch": 1,
    "crop": 16,
    "warmup": 1,
    "validation_size": 32,
    "validation_every": 10,
    "preview_every": 10,
    "checkpoint_every": 1000,
}


def chromium() -> str:
    given = os.environ.get("PLATEFORGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(given).is_file():
        return given
    if os.environ.get("PLATEFORGE_SKIP_BROWSER_TESTS") == "1":
        pytest.skip("no Chromium, and PLATEFORGE_SKIP_BROWSER_TESTS=1")
    pytest.fail(
        f"the status page's browser test needs Chromium: none at {given}. Install Debian's package "
        "(apt-get install -y chromium; .ci/run does), point PLATEFORGE_CHROMIUM at one, or set "
        "PLATEFORGE_SKIP_BROWSER_TESTS=1 to skip this test knowingly",
        pytrace=False,
    )


def test_the_page_shows_a_running_job_updating_and_its_loss_picture(tmp_path: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    executable = chromium()
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    status = start_status_server(
        "--jobs-dir", str(tmp_path / "jobs"), "--models-dir", str(tmp_path / "models"), "--threads", "1"
    )
    try:
        with Client(status.server.address, token=TOKEN, timeout=60) as client:
            training = TrainingClient(client)
            job = training.start_training(dataset=str(manifest), tool="look", params=SLOW, model_name="browser-test")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                try:
                    # Without the token: 401 (and a Basic challenge, which a headless browser
                    # without credentials turns into a navigation error).
                    anonymous = browser.new_context()
                    for path in ("", "metrics", "api/status"):
                        refused = anonymous.request.get(status.url + path)
                        assert refused.status == 401, path
                        assert "plateforge_" not in refused.text() and job.id not in refused.text()
                    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
                        anonymous.new_page().goto(status.url)

                    # What a person does: the browser asks, the token goes in as the password.
                    context = browser.new_context(
                        http_credentials={"username": "ops", "password": TOKEN},
                        viewport={"width": 1400, "height": 1000},
                    )
                    page = context.new_page()
                    loaded = page.goto(status.url)
                    assert loaded is not None and loaded.status == 200
                    row = page.locator(f'tr[data-job="{job.id}"]')
                    expect(row).to_be_visible(timeout=30_000)
                    expect(row.locator("td.state")).to_have_text("RUNNING", timeout=60_000)
                    first = int(row.locator("td.step").inner_text().split("/")[0])
                    # The page polls: the same row shows a later step without a reload.
                    page.wait_for_function(
                        "([id, step]) => { const cell = document.querySelector(`tr[data-job='${id}'] td.step`);"
                        " return cell && parseInt(cell.textContent) > step; }",
                        arg=[job.id, first],
                        timeout=60_000,
                    )
                    loss = page.locator(f'img.loss[alt="loss.png of job {job.id}"]')
                    expect(loss).to_be_visible(timeout=60_000)
                    page.wait_for_function(
                        "(alt) => { const img = document.querySelector(`img[alt='${alt}']`);"
                        " return img && img.complete && img.naturalWidth > 0; }",
                        arg=f"loss.png of job {job.id}",
                        timeout=30_000,
                    )
                    later = int(row.locator("td.step").inner_text().split("/")[0])
                    assert later > first
                    assert row.locator("td.loss").inner_text().strip() != ""
                    # A frame request appears in the recent requests, with its model and status.
                    frame = Frame.from_array(np.full((24, 40, 3), 0.18, np.float32), names=("R", "G", "B"))
                    client.process("passthrough", {"plate": frame}, transport="unary")
                    expect(page.locator("#requests tr").first).to_contain_text("passthrough", timeout=30_000)
                    expect(page.locator("#requests tr").first).to_contain_text("OK")
                    # Some curve to show in the screenshot (README: docs/status-page.png).
                    page.wait_for_function(
                        "([id]) => { const cell = document.querySelector(`tr[data-job='${id}'] td.step`);"
                        " return cell && parseInt(cell.textContent) >= 60; }",
                        arg=[job.id],
                        timeout=120_000,
                    )
                    page.wait_for_timeout(1500)  # the picture of the latest step loaded
                    ARTEFACTS.mkdir(parents=True, exist_ok=True)
                    shot = ARTEFACTS / "status-page.png"
                    page.screenshot(path=str(shot), full_page=True)
                    assert shot.stat().st_size > 10_000
                finally:
                    browser.close()
            training.cancel(job.id)
    finally:
        assert status.server.stop() == 0
