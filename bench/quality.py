"""Quality of each tool against exact ground truth, learned vs classical vs other baselines, as JSON.

For each shot of a committed set (``--set tune|report|ci|tune-production|report-production``:
``bench/sets/NAME.json``, see :mod:`plateforge_server.evaluation.benchsets`). A shot's kind says
what it is: ``analytic`` is ``make_shot(seed=...)`` (a panning, rotating camera over a textured
set, a wire, a moving bar with a marker and a tape cross stuck on the set); ``footage`` is
``make_footage_shot(seed=...)`` (real photographs moved by a known camera with parallax, wires
drawn over them; cleanup only, the other tools are skipped and the results file's
``settings.skipped`` says so); ``cycles`` is a shot of ``bench/sets/cycles-{tune,report}.json``
rendered by Blender/Cycles (bench/cycles; rendered once and cached under build/cycles-cache).
Every kind goes through the same evaluations, training path and scoring:

* **cleanup**: ``classical`` is cleanup-classical (aligned neighbouring frames, then OpenCV
  Telea); ``telea`` is OpenCV Telea alone, from the frame itself (the single-frame baseline);
  ``learned`` is the learned cleanup trained on that shot's own plates and masks for ``--steps``
  steps (self-supervised: the clean plates are never seen), run exactly as the server runs it.
  Figures (:mod:`plateforge_server.tools.cleanup.evaluation`): ``psnr``/``ssim`` inside the mask,
  ``psnr_shown``/``psnr_unseen`` inside the mask where a neighbouring frame shows the set and
  where none does, ``psnr_display`` inside the mask through the sRGB view
  (:func:`plateforge_server.tools.relight.colour.display_psnr`), ``psnr_frame``/``ssim_frame`` over
  the frame, ``warp_error`` (flicker added
  over the truth), and for ``learned`` the training time and the frames it beats classical on.
* **matte**: matte-classical (clean-plate difference key) vs the learned matte trained on three
  artist keyframe mattes; SAD, MSE, gradient and connectivity errors of alpha, PSNR/SSIM of the
  composite over a new background, warp error (:mod:`plateforge_server.tools.matte.evaluation`).
* **relight** and **look**: per K keyframe pairs (``k1`` … ``k8``), the fitted 3x4 affine
  (``classical``) and with a 3D LUT, vs pair-trained nets with and without AOV channels; PSNR
  (scene-linear, and tonemapped ``x / (1 + x)``: the relit truth is HDR) and CIEDE2000 on the
  other frames (:mod:`plateforge_server.tools.relight.evaluation`; ``settings.relight_metrics`` says
  each in words). The summary's ``also`` compares ``learned`` and ``learned_aov`` with
  ``classical`` on each of those metrics.

**Tune and report.** Choose defaults and hyperparameters on ``--set tune`` (seeds 100..109) only;
README figures come from ``--set report`` (seeds 0..5) run with the committed defaults. A set's
file is frozen by its SHA-256 in ``bench/sets/SHA256SUMS``: an edited set is refused.

**Results file.** ``--output FILE`` writes ``plateforge.benchresults/1``
(:mod:`plateforge_server.evaluation.results`): the command, git commit, machine and date, the set
and its hash, the settings, one entry per shot and tool (saved atomically as each finishes) and
the summary. ``--resume`` keeps the entries whose config hash (shot, tool, steps, keys, the full
training config) matches, and runs the rest. Without ``--output`` the same document is printed.
``--only``, ``--seeds``, ``--width``, ``--height``, ``--frames``, ``--steps`` and ``--keys`` run a
reduced version of the set; the settings record each override. ``--seeds`` picks analytic and
footage shots (a set with Cycles shots takes ``--only`` ids instead); ``--width``, ``--height``
and ``--frames`` are refused for a Cycles shot, which is rendered at its spec's size.

The summary says, per tool, whether the learned method beats the classical one on every shot,
with the margins; ``also`` does the same for the display-referred figures (``psnr_display``,
``delta_e2000``, ``psnr_tonemapped``) and the AOV relight.

  python bench/quality.py --set report --output bench/results/quality.json          # the README's figures
  python bench/quality.py --set report --output bench/results/quality.json --resume # go on after a stop
  python bench/quality.py --set tune --seeds 100,101 --steps 300 --param lr=1e-3    # tuning
  python bench/quality.py --set report-production --output bench/results/production.json  # Cycles + footage
  python bench/quality.py --quick               # tiny shot, a few steps: checks the plumbing (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from plateforge.errors import PlateforgeError
from plateforge.models import ParamValue, parse_param
from plateforge_server.device import configure_threads, pick_device
from plateforge_server.evaluation.benchsets import BenchSet, ShotSpec, load_set
from plateforge_server.evaluation.results import ResultsFile, config_hash, git_state, machine
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.evaluation.shots import AnalyticShot, BenchShot, FootageShot
from plateforge_server.tools.interface import Evaluated, evaluated_tool, learned_tool
from plateforge_server.tools.relight.evaluation import METRICS as RELIGHT_METRICS
from plateforge_server.training import TrainConfig
from plateforge_server.training.defaults import TOOL_DEFAULTS, mode_for_tool

if TYPE_CHECKING:
    from bench.cycles import CyclesShot

REPO = Path(__file__).resolve().parent.parent
SETS = REPO / "bench" / "sets"
#: The photographs footage shots are made of: ``$PLATEFORGE_TESTDATA/openexr-images``, else the
#: shared test data beside the clone (as the tests find it).
TESTDATA = Path(os.environ.get("PLATEFORGE_TESTDATA") or REPO.parent / "shared" / "testdata") / "openexr-images"


def parse_params(texts: list[str]) -> dict[str, ParamValue]:
    """``--param key=value`` overrides, parsed as ``plateforge train`` parses them."""
    return dict(parse_param(t) for t in texts)


def cleanup_config(args: argparse.Namespace) -> TrainConfig:
    """What ``plateforge train --tool cleanup --steps N`` (plus ``--param``) gives a user."""
    return bench_config("cleanup", steps=args.steps, device=args.device, params=args.params)


#: Per tool: the metric the summary compares, and whether higher is better.
SUMMARY_METRICS = {
    "cleanup": ("psnr", True),
    "matte": ("sad", False),
    "relight": ("psnr", True),
    "look": ("psnr", True),
}


#: Per tool, more (learned method, metric, higher is better) comparisons against classical: the
#: display-referred figures (what an artist judges through the view) and the AOV relight. A
#: comparison is made where a tool's evaluation returns the metric.
EXTRA_SUMMARIES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "cleanup": (("learned", "psnr_display", True),),
    "matte": (("learned", "psnr", True), ("learned", "psnr_display", True)),
    **{
        tool: (
            ("learned", "psnr_tonemapped", True),
            ("learned", "delta_e2000", False),
            ("learned_aov", "psnr", True),
            ("learned_aov", "psnr_tonemapped", True),
            ("learned_aov", "delta_e2000", False),
        )
        for tool in ("relight", "look")
    },
}


def _groups(shot: str, entry: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(where, {method: figures})`` of one shot's tool entry: itself, or one per K (relight, look)."""
    if "classical" in entry:
        return [(shot, entry)]
    return [(f"{shot}/{k}", v) for k, v in entry.items() if isinstance(v, dict) and "classical" in v]


def _margins(report: Mapping[str, Any], tool: str, method: str, metric: str) -> list[dict[str, Any]]:
    return [
        {"shot": where, "metric": metric, "margin": round(methods[method][metric] - methods["classical"][metric], 4)}
        for shot, tools in report.items()
        for where, methods in _groups(shot, tools.get(tool) or {})
        if metric in methods.get(method, {}) and metric in methods["classical"]
    ]


def _beats(margins: list[dict[str, Any]], higher: bool) -> bool:
    return all(m["margin"] > 0 if higher else m["margin"] < 0 for m in margins)


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Per tool, learned minus classical on its summary metric, per shot (and per K for the
    keyframe tools), and whether learned wins everywhere; ``also``: the same for
    :data:`EXTRA_SUMMARIES`."""
    out: dict[str, Any] = {}
    for tool, (metric, higher) in SUMMARY_METRICS.items():
        margins = _margins(report, tool, "learned", metric)
        if margins:
            out[tool] = {"learned_beats_classical_on_every_shot": _beats(margins, higher), "margins": margins}
        for method, extra, extra_higher in EXTRA_SUMMARIES.get(tool, ()):
            found = _margins(report, tool, method, extra)
            if found:
                also = out.setdefault(tool, {}).setdefault("also", {})
                also[f"{method}/{extra}"] = {
                    "beats_classical_everywhere": _beats(found, extra_higher),
                    "margins": [{"shot": m["shot"], "margin": m["margin"]} for m in found],
                }
    return out


def by_shot(entries: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"<shot>/<tool>": {"figures": ...}}`` -> ``{"<shot>": {"<tool>": figures}}``."""
    report: dict[str, dict[str, Any]] = {}
    for key, entry in entries.items():
        shot, _, tool = key.rpartition("/")
        report.setdefault(shot, {})[tool] = entry["figures"]
    return report


def _config_summary(tool: str, args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(tool, steps=args.steps, device=args.device, params=args.params).to_dict()
    keep = ("mode", "size", "batch", "crop", "lr", "warmup", "ssim_weight", "mse_weight", "exposure_jitter")
    return {k: config[k] for k in keep}


#: The tools the bench measures: those with training defaults whose learned tool is
#: :class:`~plateforge_server.tools.interface.Evaluated`; each measures a shot of any kind through
#: ``evaluate`` (the bench names no tool's bench function).
BENCH_TOOLS: tuple[str, ...] = tuple(
    tool for tool in TOOL_DEFAULTS if isinstance(learned_tool(mode_for_tool(tool)), Evaluated)
)


def _analytic(shot: ShotSpec, args: argparse.Namespace) -> BenchShot:
    return AnalyticShot(seed=shot.seed, width=shot.width, height=shot.height, frames=shot.frames)


def _footage(shot: ShotSpec, args: argparse.Namespace) -> BenchShot:
    return FootageShot(args.testdata, seed=shot.seed, width=shot.width, height=shot.height, frames=shot.frames)


@functools.lru_cache(maxsize=1)  # the bench runs a shot's tools one after the other: load its render once
def rendered(spec: str, name: str) -> CyclesShot:
    """The Cycles shot ``name`` of ``bench/sets/cycles-<spec>.json``, rendered (or found in the
    render cache: ``$PLATEFORGE_CYCLES_CACHE``, else build/cycles-cache) and loaded."""
    if str(REPO) not in sys.path:  # run as a script, bench/ is on the path but the repository root is not
        sys.path.insert(0, str(REPO))
    from bench.cycles import load_cycles_shot
    from bench.cycles import load_set as load_cycles_set

    entry = next(e for e in load_cycles_set(spec) if e["name"] == name)  # load_set checks the report spec's hash
    return load_cycles_shot(entry)


def _cycles_key(spec: str, name: str) -> str:
    """The render cache key of Cycles shot ``name``: it follows every spec parameter, the generator and bpy."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench.cycles import cache_key
    from bench.cycles import load_set as load_cycles_set

    return cache_key(next(e for e in load_cycles_set(spec) if e["name"] == name))


def _cycles(shot: ShotSpec, args: argparse.Namespace) -> BenchShot:
    assert shot.spec is not None and shot.name is not None, shot  # benchsets gives every cycles shot both
    return rendered(shot.spec, shot.name)


#: Per shot kind (:data:`plateforge_server.evaluation.benchsets.SHOT_KINDS`), how to load a shot of
#: it: the :class:`~plateforge_server.evaluation.shots.BenchShot` every tool's ``evaluate`` scores
#: (the tools a kind can score: :data:`~plateforge_server.evaluation.benchsets.KIND_TOOLS`).
KIND_SHOTS: dict[str, Callable[[ShotSpec, argparse.Namespace], BenchShot]] = {
    "analytic": _analytic,
    "footage": _footage,
    "cycles": _cycles,
}


def measure(tool: str, args: argparse.Namespace, shot: ShotSpec, work_dir: Path) -> dict[str, Any]:
    """The figures of ``tool`` on ``shot``: its learned tool's ``evaluate`` on the loaded shot."""
    loaded = KIND_SHOTS[shot.kind](shot, args)
    return evaluated_tool(tool).evaluate(tool, args=args, shot=loaded, label=shot.id, work_dir=work_dir)


def shot_args(args: argparse.Namespace, shot: ShotSpec) -> argparse.Namespace:
    """What the tools' bench functions read, for one shot (its size, after any overrides)."""
    return argparse.Namespace(
        width=shot.width, height=shot.height, frames=shot.frames, steps=args.steps,
        device=args.device, params=args.params, keys=args.keys, testdata=args.testdata,
    )  # fmt: skip


def entry_hash(args: argparse.Namespace, shot: ShotSpec, tool: str) -> str:
    """What decides an entry's figures: the shot, the tool, the steps, the K counts (keyframe
    tools) and the full training config a user's run of that tool gets (device resolved)."""
    config = bench_config(tool, steps=args.steps, device=args.device, params=args.params).to_dict()
    # A cycles shot is its spec entry: the tune spec may change, so its render's cache key says which.
    render = {"render": _cycles_key(shot.spec, shot.name)} if shot.spec is not None and shot.name is not None else {}
    return config_hash(
        {
            "shot": shot.to_dict(),
            "tool": tool,
            "steps": args.steps,
            "keys": list(args.keys) if tool in ("relight", "look") else [],
            "train_config": config,
            "device": pick_device(args.device),
            **render,
        }
    )


def chosen_shots(bench_set: BenchSet, args: argparse.Namespace) -> list[ShotSpec]:
    """The set's shots, narrowed to ``--only``/``--seeds``/``--shots`` and resized by ``--width`` etc.

    ``--seeds`` picks analytic and footage shots by seed (a cycles shot is named, and its seed
    may be a footage shot's too: a set with cycles shots takes ``--only``); ``--width``,
    ``--height`` and ``--frames`` resize analytic and footage shots, and are refused for a cycles
    shot (rendered at its spec's size)."""
    shots = list(bench_set.shots)
    only = getattr(args, "only", None)
    if only is not None:
        ids = [s.id for s in shots]
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise SystemExit(f"--only {unknown} are not in set {bench_set.name!r} (its shots: {', '.join(ids)})")
        shots = [s for s in shots if s.id in only]
    if args.seeds is not None:
        named = [s.id for s in shots if s.kind == "cycles"]
        if named:
            raise SystemExit(
                f"--seeds picks analytic and footage shots by seed; set {bench_set.name!r} also has Cycles shots "
                f"({', '.join(named)}), which are named: pick shots with --only instead"
            )
        unknown = sorted(set(args.seeds) - {s.seed for s in shots})
        if unknown:
            seeds = [s.seed for s in shots]
            raise SystemExit(f"--seeds {unknown} are not in set {bench_set.name!r} (its seeds: {seeds})")
        shots = [s for s in shots if s.seed in args.seeds]
    if args.shots is not None:
        shots = shots[: args.shots]
    sized = [f"--{n}" for n in ("width", "height", "frames") if getattr(args, n)]
    rendered_shots = [s.id for s in shots if s.kind == "cycles"]
    if sized and rendered_shots:
        raise SystemExit(
            f"{', '.join(sized)} resize analytic and footage shots; a Cycles shot is rendered at its spec's size "
            f"({', '.join(rendered_shots)}): leave them out with --only, or drop {', '.join(sized)}"
        )
    return [
        dataclasses.replace(
            s, width=args.width or s.width, height=args.height or s.height, frames=args.frames or s.frames
        )
        for s in shots
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--set", default="tune", dest="set_name",
        help="the shot set, bench/sets/NAME.json: tune (choose settings here), report (README figures), ci, "
        "tune-production and report-production (Cycles renders and real footage) (default tune)",
    )  # fmt: skip
    parser.add_argument("--seeds", help="only these of the set's seeds, comma-separated (a reduced run)")
    parser.add_argument(
        "--only", help="only these shots, by id (analytic-0, footage-1, cycles-report-small), comma-separated"
    )
    parser.add_argument("--shots", type=int, help="only the set's first N shots")
    parser.add_argument("--tools", help="tools to measure, comma-separated (default: the set's)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: the set's)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training config field on top of the tool's defaults, as plateforge train --param takes it "
        "(for tuning on tune seeds only; reported figures use the defaults); repeatable",
    )
    parser.add_argument("--frames", type=int, help="frames a shot (default: the set's)")
    parser.add_argument("--width", type=int, help="shot width (default: the set's)")
    parser.add_argument("--height", type=int, help="shot height (default: the set's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--keys", help="relight and look: keyframe counts K, comma-separated (default: the set's)")
    parser.add_argument(
        "--testdata", type=Path, default=TESTDATA,
        help=f"footage shots: the openexr-images folder of photographs (default {TESTDATA})",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, help="write the results file here, entry by entry (else print it)")
    parser.add_argument("--resume", action="store_true", help="keep --output's entries whose config hash matches")
    parser.add_argument("--quick", action="store_true", help="one tiny shot, a few steps (checks the plumbing)")
    return parser


def _ints(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(k) for k in text.split(",") if k.strip())


def skipped_pairs(shots: list[ShotSpec], tools: list[str]) -> list[dict[str, str]]:
    """The shot x tool pairs the bench leaves out: a tool the shot's kind cannot score (footage: cleanup only)."""
    return [
        {"shot": shot.id, "tool": tool, "why": f"a {shot.kind} shot scores {', '.join(shot.tools)} only"}
        for shot in shots
        for tool in tools
        if tool not in shot.tools
    ]


def _child_setup(deterministic: bool) -> None:
    configure_threads()
    if deterministic:
        torch.use_deterministic_algorithms(True)


def measure_isolated(
    tool: str, args: argparse.Namespace, shot: ShotSpec, work_dir: Path, *, deterministic: bool
) -> dict[str, Any]:
    """:func:`measure` in a fresh (spawned) process, so an entry's figures never depend on which
    entries ran before it: run after the matte's in one process, the learned relight of report
    seed 0 (240x136x12, 200 steps, K = 4) trained to 19.40 dB instead of the 20.49 it gets alone
    or after the cleanup (some process-wide state the matte's run leaves; not found yet)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, initializer=_child_setup, initargs=(deterministic,)) as pool:
        figures: dict[str, Any] = pool.apply(measure, (tool, args, shot, work_dir))
    return figures


def run_entries(
    args: argparse.Namespace, shots: list[ShotSpec], tools: list[str], results: ResultsFile
) -> dict[str, Any]:
    """Measure every shot x tool its kind can score (:func:`skipped_pairs` says which it cannot),
    not already done with the same config hash, saving each as it finishes; the file's final
    content (this run's entries only)."""
    deterministic = pick_device(args.device) == "cpu"  # each entry's process, as main() this one
    ran: list[str] = []
    with tempfile.TemporaryDirectory(prefix="plateforge-bench-quality-") as tmp:
        for shot in shots:
            for tool in tools:
                key = f"{shot.id}/{tool}"
                if tool not in shot.tools:
                    print(f"{key}: skipped (a {shot.kind} shot scores {', '.join(shot.tools)} only)", file=sys.stderr)
                    continue
                ran.append(key)
                digest = entry_hash(args, shot, tool)
                if results.done(key, digest) is not None:
                    print(f"{key}: done already (config hash matches), kept", file=sys.stderr, flush=True)
                    continue
                size = f"{shot.width}x{shot.height}x{shot.frames}"
                print(f"{key}: {size}, {args.steps} steps …", file=sys.stderr, flush=True)
                started = time.monotonic()
                work = Path(tmp) / f"{shot.id}-{tool}"
                figures = measure_isolated(tool, shot_args(args, shot), shot, work, deterministic=deterministic)
                results.record(key, digest, figures, time.monotonic() - started)
    return results.write(keep=set(ran))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    known = sorted(p.stem for p in SETS.glob("*.json") if not p.stem.startswith("cycles"))
    if args.set_name not in known:
        parser.error(f"unknown set {args.set_name!r}; known sets (bench/sets/*.json): {', '.join(known)}")
    bench_set = load_set(SETS / f"{args.set_name}.json")
    args.seeds = _ints(args.seeds)
    args.only = None if args.only is None else [i.strip() for i in args.only.split(",") if i.strip()]
    if args.quick:
        args.shots, args.steps, args.frames, args.width, args.height = 1, 4, 5, 160, 96
        args.param = ["batch=2", *args.param]
    args.steps = args.steps or bench_set.steps
    args.keys = _ints(args.keys) or bench_set.keys
    args.params = dict(parse_param(t) for t in args.param)
    tools = [t for t in args.tools.split(",") if t] if args.tools else list(bench_set.tools)
    unknown = sorted(set(tools) - set(BENCH_TOOLS))
    if unknown:
        parser.error(f"unknown tools {unknown}; known: {', '.join(BENCH_TOOLS)}")
    if args.resume and args.output is None:
        parser.error("--resume needs --output (the results file to go on with)")
    threads = configure_threads()  # as the server does: the cores this process may use, or $PLATEFORGE_TORCH_THREADS
    device = pick_device(args.device)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)  # with seeds and one thread: the same figures every run
    shots = chosen_shots(bench_set, args)
    if any(s.kind == "footage" for s in shots) and not args.testdata.is_dir():
        parser.error(f"footage shots are made of the photographs in --testdata, but {args.testdata} is not a folder")
    commit, dirty = git_state(REPO)
    reduced = {
        name: value
        for name, value in (
            ("only", args.only), ("seeds", [s.seed for s in shots]), ("width", args.width), ("height", args.height),
            ("frames", args.frames), ("steps", args.steps if args.steps != bench_set.steps else None),
            ("keys", list(args.keys) if args.keys != bench_set.keys else None),
            ("tools", tools if tools != list(bench_set.tools) else None),
        )
        if value is not None
    }  # fmt: skip
    header = {
        "command": shlex.join(["python", "bench/quality.py", *(sys.argv[1:] if argv is None else argv)]),
        "commit": commit,
        "dirty": dirty,
        "machine": {**machine(device), "torch_threads": threads},
        "set": {
            "name": bench_set.name,
            "path": str(bench_set.path.relative_to(REPO)),
            "sha256": bench_set.sha256,
        },
        "settings": {
            "shots": [s.to_dict() for s in shots],
            "tools": tools,
            "steps": args.steps,
            "keys": list(args.keys),
            "params": args.params,
            "reduced_from_set": reduced,
            # Shot x tool pairs left out because the shot's kind has no ground truth for the tool.
            "skipped": skipped_pairs(shots, tools),
            "quick": args.quick,
            # The config of every tool's run (steps and device aside, what `plateforge train --tool X` gives).
            "train_configs": {tool: _config_summary(tool, args) for tool in tools},
            "relight_metrics": RELIGHT_METRICS,
        },
    }
    output = args.output or Path(tempfile.mkdtemp(prefix="plateforge-bench-results-")) / "quality.json"
    results = ResultsFile(output, header=header, summarise=lambda e: summary(by_shot(e)), resume=args.resume)
    document = run_entries(args, shots, tools, results)
    if args.output is None:
        print(json.dumps(document, indent=2))
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PlateforgeError as error:  # a bad set, results file or option: say what, no traceback
        print(f"bench/quality.py: {error}", file=sys.stderr)
        sys.exit(2)
