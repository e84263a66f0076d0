"""CI's check of one small report shot (issue 16.1): ``bench/quality.py --set ci`` (report seed 0,
reduced, every tool) run afresh must give the committed ``bench/results/ci.json`` within 0.1 dB;
and a results file is resumable: finished entries whose config hash matches are kept, the rest run.

The run is deterministic on CPU (seeds, one thread, ``torch.use_deterministic_algorithms``): two
runs gave bit-identical figures. About 1 minute of CPU on 2 cores (3 minutes on a loaded machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plateforge_server.evaluation.results import read_results

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "quality.py"
COMMITTED = REPO / "bench" / "results" / "ci.json"
#: The whole run's limit (the issue: at most 5 minutes on 2 cores for every tool together).
LIMIT_S = 300.0
#: Not figures: they vary with the machine's load (any ``*_seconds``, e.g. the closed-form solve).
TIMINGS = ("train_seconds",)


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PLATEFORGE_TORCH_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(BENCH), "--set", "ci", "--device", "cpu", *args],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO,
    )  # fmt: skip


def _numbers(figures: Any, where: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(figures, dict):
        for key, value in figures.items():
            yield from _numbers(value, f"{where}/{key}")
    elif isinstance(figures, (int, float)) and not isinstance(figures, bool):
        yield where, float(figures)


def _check_close(name: str, fresh: float, committed: float) -> None:
    metric = name.rsplit("/", 1)[-1]
    if metric in TIMINGS or metric.endswith("_seconds"):
        return
    if metric.startswith("psnr"):
        assert fresh == pytest.approx(committed, abs=0.1), f"{name}: {fresh:.4f} dB, committed {committed:.4f} dB"
    else:
        assert fresh == pytest.approx(committed, rel=1e-3, abs=1e-6), f"{name}: {fresh}, committed {committed}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], float]:
    output = tmp_path_factory.mktemp("ci") / "ci.json"
    started = time.monotonic()
    done = _bench("--output", str(output))
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return read_results(output), seconds


def test_the_ci_shot_gives_its_committed_figures(fresh: tuple[dict[str, Any], float]) -> None:
    result, seconds = fresh
    committed = read_results(COMMITTED)
    assert result["set"] == committed["set"], "the ci set changed since its figures were committed"
    assert (
        list(result["entries"])
        == list(committed["entries"])
        == [f"analytic-0/{tool}" for tool in ("cleanup", "matte", "relight", "look")]
    )
    for key, entry in result["entries"].items():
        theirs = committed["entries"][key]
        assert entry["config_hash"] == theirs["config_hash"], f"{key}: trained with other settings than committed"
        mine, expected = dict(_numbers(entry["figures"])), dict(_numbers(theirs["figures"]))
        assert set(mine) == set(expected), key
        for name, value in mine.items():
            _check_close(f"{key}{name}", value, expected[name])
    # The summary follows from the figures.
    assert json.dumps(result["summary"], sort_keys=True) == json.dumps(committed["summary"], sort_keys=True)
    print(f"ci shot: {seconds:.0f} s for every tool")
    if os.environ.get("PLATEFORGE_TIMED_MACHINE"):  # an idle 2-core machine: the budget
        assert seconds < LIMIT_S


def test_a_resumed_run_keeps_matching_entries_and_runs_the_rest(tmp_path: Path) -> None:
    output = tmp_path / "ci.json"
    committed = read_results(COMMITTED)
    stale = json.loads(json.dumps(committed))
    stale["entries"]["analytic-0/cleanup"]["config_hash"] = "0" * 64  # as if its settings had changed
    stale["entries"]["analytic-0/cleanup"]["figures"]["learned"]["psnr"] = -1.0
    output.write_text(json.dumps(stale))
    done = _bench("--output", str(output), "--resume", "--tools", "cleanup,matte")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "analytic-0/matte: done already" in done.stderr
    assert "analytic-0/cleanup: done already" not in done.stderr
    resumed = read_results(output)
    assert list(resumed["entries"]) == ["analytic-0/cleanup", "analytic-0/matte"]  # this run's entries only
    assert resumed["entries"]["analytic-0/matte"] == committed["entries"]["analytic-0/matte"]  # kept as it was
    cleanup = resumed["entries"]["analytic-0/cleanup"]
    assert cleanup["config_hash"] == committed["entries"]["analytic-0/cleanup"]["config_hash"]
    assert cleanup["figures"]["learned"]["psnr"] == pytest.approx(
        committed["entries"]["analytic-0/cleanup"]["figures"]["learned"]["psnr"], abs=0.1
    )
    assert resumed["command"].endswith("--resume --tools cleanup,matte")
