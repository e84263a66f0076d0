"""bench/quality.py in its reduced setting (CI): the documented JSON (a results document, schema
plateforge.benchresults/1), with figures that mean something."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from plateforge_server.evaluation.benchsets import KIND_TOOLS, load_set
from plateforge_server.tools.cleanup.evaluation import CleanupScene
from plateforge_server.tools.cleanup.footage import make_footage_shot
from tests.conftest import needs_testdata

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"
SETS = BENCH.parent / "sets"
METRICS = ("psnr", "ssim", "psnr_frame", "ssim_frame", "warp_error", "psnr_display")


def test_quick_run_prints_the_documented_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--tools", "cleanup", "--device", "cpu"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["schema"] == "plateforge.benchresults/1" and report["set"]["name"] == "tune"
    assert report["settings"]["quick"] is True and len(report["settings"]["shots"]) == 1
    assert report["command"].startswith("python bench/quality.py --quick")
    assert list(report["entries"]) == ["analytic-100/cleanup"]  # the tune set's first shot, never a report shot
    methods = report["entries"]["analytic-100/cleanup"]["figures"]
    assert set(methods) == {"classical", "learned", "telea", "uncleaned"}
    for figures in methods.values():
        assert all(math.isfinite(figures[m]) for m in METRICS), figures
    # What the tools do must show: painting out beats leaving the rig, and using the neighbouring
    # frames beats inpainting from the frame alone.
    assert methods["classical"]["psnr"] > methods["telea"]["psnr"] > methods["uncleaned"]["psnr"]
    # Through the view too (PSNR after the sRGB transform, inside the mask).
    assert (
        methods["classical"]["psnr_display"] > methods["telea"]["psnr_display"] > methods["uncleaned"]["psnr_display"]
    )
    assert methods["uncleaned"]["warp_error"] > methods["classical"]["warp_error"]
    # Four steps barely move a net that starts as the classical cleanup.
    assert abs(methods["learned"]["psnr"] - methods["classical"]["psnr"]) < 1.0
    assert methods["learned"]["train_steps"] == 4 and methods["learned"]["train_seconds"] > 0
    margins = report["summary"]["cleanup"]["margins"]
    assert [m["shot"] for m in margins] == ["analytic-100"] and margins[0]["metric"] == "psnr"
    display = report["summary"]["cleanup"]["also"]["learned/psnr_display"]["margins"]
    assert display[0]["margin"] == round(methods["learned"]["psnr_display"] - methods["classical"]["psnr_display"], 4)


# -- the production-like kinds (issue 16.1): real footage through the same path ------------------


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality_kinds", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_testdata
def test_a_footage_shot_runs_through_the_bench_and_scores_as_cleanup_scene_does(testdata: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--set", "tune-production", "--only", "footage-100", "--tools", "cleanup,matte",
         "--width", "96", "--height", "64", "--frames", "5", "--steps", "3", "--param", "batch=2", "--device", "cpu",
         "--testdata", str(testdata)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["set"]["name"] == "tune-production"
    assert report["settings"]["shots"] == [{"kind": "footage", "seed": 100, "width": 96, "height": 64, "frames": 5}]
    assert report["settings"]["reduced_from_set"]["only"] == ["footage-100"]
    # matte has no ground truth on footage: skipped, and the results file says so
    assert report["settings"]["skipped"] == [
        {"shot": "footage-100", "tool": "matte", "why": "a footage shot scores cleanup only"}
    ]
    assert list(report["entries"]) == ["footage-100/cleanup"]
    methods = report["entries"]["footage-100/cleanup"]["figures"]
    assert set(methods) == {"classical", "learned", "telea", "uncleaned"}
    for figures in methods.values():
        assert all(math.isfinite(figures[m]) for m in METRICS), figures
    assert methods["learned"]["train_steps"] == 3 and methods["learned"]["frames"] == 5
    # The camera moves: the neighbouring frames show what the wire hides, better than Telea guesses it.
    assert methods["classical"]["psnr"] > methods["telea"]["psnr"]
    # The same shot scored directly: the bench's classical figures are CleanupScene's on that shot.
    scene = CleanupScene(make_footage_shot(testdata, seed=100, width=96, height=64, frames=5))
    for name, value in scene.score(scene.classical()).items():
        assert methods["classical"][name] == pytest.approx(value, abs=1e-6), name
    assert [m["shot"] for m in report["summary"]["cleanup"]["margins"]] == ["footage-100"]


def test_every_kind_has_a_loader_and_each_tool_it_scores_is_measured() -> None:
    bench = _bench_module()
    assert set(bench.KIND_SHOTS) == set(KIND_TOOLS)
    for tools in KIND_TOOLS.values():
        assert set(tools) <= set(bench.BENCH_TOOLS)


@needs_testdata
def test_a_footage_shot_gives_the_cleanup_view_only(testdata: Path) -> None:
    from plateforge.errors import UsageError
    from plateforge_server.evaluation.benchsets import ShotSpec
    from plateforge_server.evaluation.shots import AnalyticShot

    bench = _bench_module()
    args = argparse.Namespace(testdata=testdata)
    spec = ShotSpec(kind="footage", seed=100, width=64, height=48, frames=3)
    loaded = bench.KIND_SHOTS["footage"](spec, args)
    shot = loaded.cleanup()
    assert len(shot) == 3 and shot.width == 64
    for view in ("matte", "relit"):
        with pytest.raises(UsageError, match="cleanup only"):
            getattr(loaded, view)()
    analytic = bench.KIND_SHOTS["analytic"](ShotSpec(kind="analytic", seed=1, width=48, height=32, frames=2), args)
    assert analytic == AnalyticShot(seed=1, width=48, height=32, frames=2)
    assert len(analytic.cleanup()) == len(analytic.matte()) == len(analytic.relit()) == 2


def _args(**overrides: object) -> argparse.Namespace:
    return argparse.Namespace(**{"only": None, "seeds": None, "shots": None, "width": None, "height": None,
                                 "frames": None, **overrides})  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"seeds": (0,)}, r"--seeds picks analytic and footage shots by seed; .*cycles-report-small", id="seeds"
        ),
        pytest.param(
            {"width": 96}, r"--width resize analytic and footage shots; .*rendered at its spec's size", id="width"
        ),
        pytest.param({"only": ["cycles-report-9"]}, r"--only \['cycles-report-9'\] are not in set", id="only"),
    ],
)
def test_reductions_that_do_not_apply_to_a_cycles_shot_are_refused(overrides: dict[str, object], message: str) -> None:
    bench = _bench_module()
    production = load_set(SETS / "report-production.json")
    with pytest.raises(SystemExit, match=message):
        bench.chosen_shots(production, _args(**overrides))


def test_reductions_keep_working_for_the_shots_they_apply_to() -> None:
    bench = _bench_module()
    production = load_set(SETS / "report-production.json")
    footage = bench.chosen_shots(production, _args(only=["footage-1", "footage-0"], frames=6, width=96))
    assert [(s.id, s.width, s.height, s.frames) for s in footage] == [
        ("footage-0", 96, 270, 6),
        ("footage-1", 96, 270, 6),
    ]
    rendered = bench.chosen_shots(production, _args(only=["cycles-report-small"]))
    assert rendered == [production.shots[0]] and rendered[0].name == "report-small"
    tune = load_set(SETS / "tune.json")
    assert [s.id for s in bench.chosen_shots(tune, _args(seeds=(101,), width=96))] == ["analytic-101"]
