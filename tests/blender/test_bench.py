"""bench/blender.py runs and prints its JSON (tiny frames, so the test stays quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.blender, pytest.mark.slow]


def test_bench_prints_the_node_and_direct_costs(blender_python: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "blender.py"), "--frames", "2", "--rounds", "1",
         "--width", "64", "--height", "36"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    costs = report["median_s_per_frame"]
    assert report["resolution"] == "64x36" and report["model"] == "passthrough"
    for key in ("bake", "render", "render_without_node", "rebake_unchanged", "direct_client_call"):
        assert costs[key] > 0, key
    assert costs["node_total"] == pytest.approx(costs["bake"] + costs["render"], abs=1e-3)
