"""Without the shared OpenEXR corpus, the tests that read it fail, naming where it must be; none
skips, so a CI that lost ../shared/testdata cannot pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, TESTDATA

#: One of each kind: the `testdata` fixture, the `needs_testdata` mark, a parameter list built from
#: the folder (empty when it is missing) and the damaged-file batches.
SELECTED = [
    "tests/plateforge/cli/test_cli.py::test_info_describes_windows_and_parts",
    "tests/plateforge/test_exr.py::test_anamorphic_pixel_aspect_is_kept",
    "tests/plateforge/test_exr.py::test_round_trip_is_bit_exact",
    "tests/plateforge/test_exr.py::test_damaged_files_raise_exr_error_or_read",
]


def test_the_corpus_is_here() -> None:
    assert TESTDATA.is_dir() and any(TESTDATA.rglob("*.exr")), TESTDATA


def test_missing_corpus_fails_naming_where(tmp_path: Path) -> None:
    env = {**os.environ, "PLATEFORGE_TESTDATA": str(tmp_path / "lost")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *SELECTED],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 1, run.stdout[-3000:]
    assert "skipped" not in summary and "passed" not in summary and "error" in summary, summary
    expected = str(tmp_path / "lost" / "openexr-images")
    assert run.stdout.count(f"expected the folder {expected}") >= len(SELECTED), run.stdout[-3000:]
    assert "shared/testdata" in run.stdout
