"""bench/cycles: the Cycles-rendered shots, rendered for real through bpy 5.0.1 (build/blender-venv).

The render tests render the small report shot (``report-small``: 240x136, 6 frames, 16 samples,
about 4 minutes on 2 busy cores) once per session into build/cycles-cache, or into a fresh
folder with ``PLATEFORGE_CYCLES_FRESH=1`` (the cache is keyed by the generator's source, the spec,
bpy and the photographs, so a change to any of them renders again anyway), and check properties
of the pixels Cycles wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.cycles import CyclesShot, cache_key, load_cycles_shot, load_set, read_render, roto_mask
from bench.cycles.render import VARIANTS, render_shot, variant_frames
from bench.cycles.spec import SETS_DIR
from plateforge.exr import read_exr_header
from plateforge.shots.relit import AOV_CHANNELS
from plateforge.shots.synthetic import MASK_GROW, MASK_SOFTNESS

SMALL = "report-small"


def _entry(name: str = SMALL) -> dict[str, object]:
    return next(e for e in load_set("report") if e["name"] == name)


# -- fast: the specs and the cache key ------------------------------------------------------------


def test_sets_have_tune_and_report_shots_and_the_report_hash_holds() -> None:
    tune, report = load_set("tune"), load_set("report")
    assert len(tune) + len(report) >= 6 and len(report) >= 3
    assert not {e["name"] for e in tune} & {e["name"] for e in report}
    assert not {e["seed"] for e in tune} & {e["seed"] for e in report}
    assert any(e["width"] * e["height"] <= 240 * 136 for e in report)


def test_an_edited_report_set_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cycles-report.json", "SHA256SUMS", "cycles-tune.json"):
        shutil.copy(SETS_DIR / name, tmp_path / name)
    document = json.loads((tmp_path / "cycles-report.json").read_text())
    document["shots"][0]["samples"] += 1
    (tmp_path / "cycles-report.json").write_text(json.dumps(document, indent=1) + "\n")
    monkeypatch.setattr("bench.cycles.spec.SETS_DIR", tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        load_set("report")
    assert len(load_set("tune")) >= 3  # the tune set may change freely


def test_the_cache_key_follows_every_parameter() -> None:
    entry = _entry()
    assert cache_key(entry) == cache_key(dict(entry))
    keys = {cache_key({**entry, name: value + 1 if isinstance(value, (int, float)) else [*value, value[0]]})
            for name, value in entry.items() if name not in ("name", "generator_version")}  # fmt: skip
    assert len(keys) == len([n for n in entry if n not in ("name", "generator_version")])
    assert cache_key(entry) not in keys


def test_roto_mask_grows_like_the_analytic_one() -> None:
    coverage = np.zeros((20, 30), np.float32)
    coverage[:, 10] = 0.3  # a one-pixel wire, partly covering its column
    mask = roto_mask(coverage)
    row = mask[5]
    assert row[10] == 1 and row[10 - int(MASK_GROW)] == 1 and row[10 + int(MASK_GROW)] == 1
    assert 0 < row[10 + int(MASK_GROW) + 1] < 1 and row[10 + int(MASK_GROW + MASK_SOFTNESS) + 1] == 0
    assert np.array_equal(mask, mask[::-1])


# -- slow: one real render ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> CyclesShot:
    kwargs = {}
    if os.environ.get("PLATEFORGE_CYCLES_FRESH"):
        kwargs["cache"] = tmp_path_factory.mktemp("cycles-cache")
    return load_cycles_shot(_entry(), **kwargs)  # type: ignore[arg-type]


def _render(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test that needs the render: bpy, slow, and the first one renders (minutes)."""
    marked: Callable[..., None] = pytest.mark.blender(pytest.mark.slow(pytest.mark.timeout(1200)(test)))
    return marked


@_render
def test_every_file_has_the_right_windows_and_channels(shot: CyclesShot) -> None:
    entry = shot.entry
    width, height = int(entry["width"]), int(entry["height"])
    for variant in VARIANTS:
        for number in variant_frames(entry, variant):
            parts = read_exr_header(shot.folder / f"{variant}.{number:04d}.exr")
            assert parts, variant
            for part in parts:
                assert (part.data_window.width, part.data_window.height) == (width, height), (variant, part)
                assert part.data_window == part.display_window
    manifest = json.loads((shot.folder / "manifest.json").read_text())
    assert manifest["bpy"] == "bpy==5.0.1" and manifest["blender"].startswith("5.0.1")
    plate = shot.relit().plates[0]
    for name in (*AOV_CHANNELS, "Z", "albedo.R", "albedo.G", "albedo.B"):
        assert name in plate.channels, name
        assert np.isfinite(plate.channels[name]).all(), name
    assert plate.channels["R"].dtype == np.float16 and plate.channels["Z"].dtype == np.float32


@_render
def test_aovs_describe_the_geometry(shot: CyclesShot) -> None:
    passes = shot.renders[0]["plate"]
    normal = passes["Normal"]
    length = np.linalg.norm(normal, axis=-1)
    assert np.median(length) == pytest.approx(1.0, abs=0.02)
    # P seen from the camera is at the depth the Z pass gives (planar depth along the view axis)
    world_to_camera = np.array(shot.cameras[0]["world_to_camera"])
    p = passes["Position"].reshape(-1, 3)
    local = (world_to_camera @ np.vstack([p.T, np.ones(len(p))]))[:3]
    depth = passes["Depth"].reshape(-1)
    planar, euclid = -local[2], np.linalg.norm(local, axis=0)
    best = min(np.median(np.abs(planar - depth) / depth), np.median(np.abs(euclid - depth) / depth))
    assert best < 0.01
    albedo = passes["Diffuse Color"]
    assert albedo.min() >= 0 and 0.05 < float(np.median(albedo)) < 2.0


@_render
def test_subject_alpha_is_true_fractional_coverage_with_fur(shot: CyclesShot) -> None:
    matte = shot.matte()
    ys, xs = np.mgrid[0 : matte.height, 0 : matte.width] + 0.5
    for i in range(len(shot)):
        raw = shot.renders[i]["subject"]["Combined"][:, :, 3]
        assert raw.min() >= 0 and raw.max() <= 1 + 1e-5
        alpha = matte.alpha(i)
        camera = shot.cameras[i]
        body, fur = camera["subject_radius_px"], camera["hair_px"]
        cx, cy = camera["subject_centre_px"]
        radius = np.hypot(xs - cx, ys - cy)
        assert (alpha[radius < 0.8 * body] > 0.98).mean() > 0.95  # the body is covered
        # the fur: fractional coverage well outside the body (beyond what defocus and the blur of
        # the body's edge give), all round it
        fringe = (radius > body + 0.4 * fur) & (radius < body + fur)
        fractional = fringe & (alpha > 0.02) & (alpha < 0.98)
        octant = ((np.arctan2(ys - cy, xs - cx) + np.pi) / (np.pi / 4)).astype(int) % 8
        assert len(set(octant[fractional].tolist())) == 8, i
        assert fractional.sum() > 0.3 * fringe.sum(), (i, fractional.sum(), fringe.sum())
        assert (alpha[radius > body + 1.5 * fur + 3] == 0).mean() > 0.999
        # the premultiplied foreground over the set without the subject is the plate, except where
        # the subject shadows or lights the set: most pixels agree to within sampling noise
        over = (1 - alpha)[:, :, None] * matte.cleans[i].stack(("R", "G", "B"))
        comp = matte.foregrounds[i].stack(("R", "G", "B")) + over
        plate = matte.plates[i].stack(("R", "G", "B"))
        assert np.median(np.abs(comp - plate)) < 3e-3


def _smeared(alpha: np.ndarray, length: float, direction: np.ndarray) -> np.ndarray:
    """``alpha`` smeared by a straight box of ``length`` pixels along ``direction``: what a
    shutter open while the subject moves that far makes of its still coverage."""
    reach = int(np.ceil(length / 2)) + 2
    kernel = np.zeros((2 * reach + 1, 2 * reach + 1), np.float32)
    for t in np.linspace(-length / 2, length / 2, 64):  # bilinear splats along the segment
        x, y = reach + t * direction[0], reach + t * direction[1]
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        kernel[y0 : y0 + 2, x0 : x0 + 2] += np.array([[(1 - fx) * (1 - fy), fx * (1 - fy)], [(1 - fx) * fy, fx * fy]])
    kernel /= kernel.sum()
    smeared: np.ndarray = cv2.filter2D(alpha.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return smeared


@_render
def test_motion_blur_smears_the_subject_along_its_motion(shot: CyclesShot) -> None:
    middle = (len(shot) - 1) // 2
    assert set(shot.renders[middle]) >= {"still", "subject"}
    opens, closes = np.array(shot.cameras[middle]["subject_shutter_px"])
    length = float(np.hypot(*(closes - opens)))
    assert length > 3  # pixels the subject's centre travels while the shutter is open
    direction = (closes - opens) / length
    blurred, still = shot.alpha(middle, "subject"), shot.alpha(middle, "still")
    assert abs(float(blurred.sum() - still.sum())) < 0.02 * float(still.sum())  # the blur moves coverage, keeps it

    def error(reference: np.ndarray) -> float:
        return float(((blurred - reference) ** 2).sum())

    # The blurred coverage is the still one smeared along the motion by the shutter's travel: far
    # closer to that than to the still frame, to the same smear across the motion, or to one twice
    # as long. Measured on report-small (L = 4.96 px): 8.06 against 17.46 (still), 11.90 (across),
    # 18.14 (twice). Whole-image errors, so Cycles' render-to-render noise (two renders of one
    # cache key differ in ~650 hair pixels, which moved the earlier second-moment check by up to
    # half of L^2/12 and failed it) shifts all four alike.
    along = error(_smeared(still, length, direction))
    assert along < 0.65 * error(still), (along, error(still))
    assert along < 0.85 * error(_smeared(still, length, np.array([-direction[1], direction[0]])))
    assert along < 0.65 * error(_smeared(still, 2 * length, direction))


@_render
def test_plate_and_clean_plate_share_the_seed(shot: CyclesShot) -> None:
    cleanup = shot.cleanup()
    for i in range(len(shot)):
        rig = shot.alpha(i, "rig")
        assert rig.max() > 0.2 and (rig > 0.05).mean() < 0.2  # the wire and arm are there, and thin
        assert (cleanup.masks[i].channels["A"][rig > 0] == 1).all()
        plate, clean = cleanup.plates[i].stack(("R", "G", "B")), cleanup.cleans[i].stack(("R", "G", "B"))
        assert np.abs(plate - clean).max() > 0.1  # the rig shows
        # The rig is seen by the camera only and both renders take the same samples: away from it
        # they differ only by what the denoiser carries over from near it. Another seed leaves
        # the denoiser's residual noise everywhere (median 6e-3 on tune-small).
        far = cv2.distanceTransform((rig <= 0).astype(np.uint8), cv2.DIST_L2, 5) > 8
        difference = np.abs(plate - clean).max(axis=-1)[far]
        assert np.median(difference) < 5e-4 and np.percentile(difference, 99) < 1e-2, np.percentile(
            difference, [50, 99]
        )
        # The set alone against the plate, away from the subject: the same, but for its shadow
        alpha = shot.alpha(i, "subject")
        away = cv2.distanceTransform((alpha <= 0).astype(np.uint8), cv2.DIST_L2, 5) > 16
        assert np.median(np.abs(shot.rgb(i, "plate") - shot.rgb(i, "clean")).max(axis=-1)[away]) < 2.5e-3
    assert cleanup.revealed(cleanup.frame_numbers[2], 2).any()


@_render
def test_relit_plate_changes_locally(shot: CyclesShot) -> None:
    relit = shot.relit()
    plate, target = relit.plates[0].stack(("R", "G", "B")), relit.relits[0].stack(("R", "G", "B"))
    change = np.abs(target - plate) / (plate + 0.02)
    assert (change > 0.1).mean() > 0.2
    # not a global colour transform: the best 3x4 affine from plate to relit leaves most of the
    # relit plate's variance unexplained (the light moved: where it falls depends on geometry)
    x = np.hstack([plate.reshape(-1, 3), np.ones((plate.size // 3, 1), np.float32)]).astype(np.float64)
    y = target.reshape(-1, 3).astype(np.float64)
    fit, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert np.mean((x @ fit - y) ** 2) > 0.3 * np.var(y, axis=0).mean()
    look = relit.looks[0].stack(("R", "G", "B"))
    assert not np.allclose(look, plate, atol=1e-2)


@_render
def test_the_camera_moves_and_the_second_set_differs(shot: CyclesShot) -> None:
    first, last = shot.rgb(0, "clean"), shot.rgb(len(shot) - 1, "clean")
    assert np.mean(np.abs(first - last)) > 0.02
    assert not np.allclose(shot.cameras[0]["world_to_camera"], shot.cameras[-1]["world_to_camera"])
    backdrop = shot.rgb(0, "backdrop")
    assert np.mean(np.abs(backdrop - first)) > 0.05
    assert read_render(shot.folder / f"backdrop.{shot.first_frame:04d}.exr")["Combined"].shape[:2] == first.shape[:2]


@_render
def test_the_evaluations_take_a_rendered_shot_unchanged(shot: CyclesShot) -> None:
    from plateforge_server.tools.base import ToolCall
    from plateforge_server.tools.cleanup.evaluation import CleanupScene
    from plateforge_server.tools.matte import classical as matte_classical
    from plateforge_server.tools.matte.evaluation import sad
    from plateforge_server.tools.relight.evaluation import RelightScene

    scene = CleanupScene(shot.cleanup())
    classical, uncleaned = scene.score(scene.classical()), scene.score(scene.uncleaned())
    assert all(np.isfinite(v) for v in (*classical.values(), *uncleaned.values())), (classical, uncleaned)
    assert uncleaned["psnr"] < 40 and uncleaned["psnr_frame"] > uncleaned["psnr"]  # the rig is in the mask

    matte = shot.matte()
    state = matte_classical.load(device="cpu")
    for i in range(len(matte)):
        inputs = {"plate": [matte.plates[i]], "clean_plate": [matte.cleans[i]]}
        call = ToolCall(info=matte_classical.INFO, inputs=inputs, params={}, target_frame=matte.frame_numbers[i])
        alpha = matte_classical.run(state, call)["alpha"].channels["A"]
        assert 0 < sad(alpha, matte.alpha(i)) < sad(np.ones_like(alpha), matte.alpha(i))
    assert np.isfinite(matte.composite(0)).all() and matte.subject_flow(1, 0).shape == (2, 3)

    relight = RelightScene(shot.relit(), "relit")
    keys = [0, len(shot) - 1]
    fitted, unchanged = relight.classical(keys), relight.unchanged(keys)
    assert all(np.isfinite(v).all() for v in (*fitted.values(), *unchanged.values()))  # figures and per-frame lists
    assert fitted != unchanged
    assert RelightScene(shot.relit(), "look").classical(keys)["psnr_tonemapped"] > 30  # a grade is global


@_render
def test_an_interrupted_render_resumes_with_the_frames_it_kept(tmp_path: Path) -> None:
    entry = {**_entry(), "name": "resume-check", "width": 64, "height": 36, "frames": 2, "samples": 2}
    folder = render_shot(entry, cache=tmp_path)
    assert folder.name == f"resume-check-{cache_key(entry)[:16]}" and (folder / "manifest.json").is_file()
    # as a killed render leaves it: a partial folder, one frame missing, no manifest
    partial = folder.with_name(f".partial-{folder.name}")
    folder.rename(partial)
    (partial / "manifest.json").unlink()
    (partial / "plate.1002.exr").unlink()
    kept = partial / "rigged.1001.exr"
    before = (kept.read_bytes(), kept.stat().st_mtime_ns)
    assert render_shot(entry, cache=tmp_path) == folder
    after = folder / "rigged.1001.exr"
    assert (after.read_bytes(), after.stat().st_mtime_ns) == before  # kept, not rendered again
    assert read_render(folder / "plate.1002.exr")["Combined"].shape == (36, 64, 4)
    assert render_shot(entry, cache=tmp_path) == folder  # cached: returns at once


@_render
def test_the_bench_measures_a_cycles_shot_of_the_production_set(shot: CyclesShot) -> None:
    """bench/quality.py's ``cycles`` kind on the cached render: the cleanup scored as CleanupScene
    scores the shot's ``.cleanup()``, trained through the bench's path (2 steps: the plumbing)."""
    from plateforge_server.tools.cleanup.evaluation import CleanupScene

    bench = Path(__file__).resolve().parents[2] / "bench" / "quality.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--set", "report-production", "--only", "cycles-report-small",
         "--tools", "cleanup", "--steps", "2", "--param", "batch=2", "--device", "cpu"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "PLATEFORGE_CYCLES_CACHE": str(shot.folder.parent)},  # the render the fixture made
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["settings"]["shots"] == [
        {"kind": "cycles", "seed": 0, "width": 240, "height": 136, "frames": 6, "spec": "report", "name": SMALL}
    ]
    assert list(report["entries"]) == [f"cycles-{SMALL}/cleanup"] and report["settings"]["skipped"] == []
    methods = report["entries"][f"cycles-{SMALL}/cleanup"]["figures"]
    assert set(methods) == {"classical", "learned", "telea", "uncleaned"}
    assert all(np.isfinite(v) for figures in methods.values() for v in figures.values()), methods
    assert methods["learned"]["train_steps"] == 2 and methods["learned"]["frames"] == len(shot)
    scene = CleanupScene(shot.cleanup())
    for name, value in scene.score(scene.classical()).items():
        assert methods["classical"][name] == pytest.approx(value, abs=1e-6), name
