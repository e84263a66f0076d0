"""The benchmark's shot sets (issue 16.1): tune and report seeds apart, every set frozen by its hash."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from plateforge.errors import UsageError
from plateforge_server.evaluation.benchsets import HASHES_FILE, KIND_TOOLS, ShotSpec, load_set, recorded_hashes
from plateforge_server.tools.cleanup.footage import REPORT_SEEDS, TUNE_SEEDS

SETS = Path(__file__).resolve().parents[2] / "bench" / "sets"


def test_every_set_file_is_recorded_with_its_hash() -> None:
    recorded = recorded_hashes(SETS)
    # cycles-tune.json is the Cycles renders' tune spec (bench/cycles): it may change; every other set is frozen.
    files = {p.name for p in SETS.glob("*.json") if p.name != "cycles-tune.json"}
    assert {"tune.json", "report.json", "ci.json", "cycles-report.json", "report-production.json"} <= files
    assert not list(SETS.glob("*.sha256")), "one hash file per folder: record hashes in SHA256SUMS"
    assert files <= set(recorded), f"sets without a recorded hash: {sorted(files - set(recorded))}"
    for name in files:
        assert hashlib.sha256((SETS / name).read_bytes()).hexdigest() == recorded[name], f"{name} was edited"


def test_tune_and_report_are_the_agreed_seeds_and_never_overlap() -> None:
    tune, report, ci = (load_set(SETS / f"{n}.json") for n in ("tune", "report", "ci"))
    assert [s.seed for s in tune.shots] == list(range(100, 110))
    assert [s.seed for s in report.shots] == list(range(6))
    assert {s.kind for s in (*tune.shots, *report.shots)} == {"analytic"}
    assert not {s.id for s in tune.shots} & {s.id for s in report.shots}
    # The CI shot is a report shot, smaller.
    (shot,) = ci.shots
    assert shot.id in {s.id for s in report.shots} and shot.width * shot.height < 480 * 270


def _copy(tmp_path: Path, name: str) -> Path:
    for file in (name, HASHES_FILE):
        shutil.copy(SETS / file, tmp_path / file)
    return tmp_path / name


def test_an_edited_report_set_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path, "report.json")
    data = json.loads(path.read_text())
    data["steps"] = 601  # a "small" edit after tuning started
    path.write_text(json.dumps(data, indent=2) + "\n")
    with pytest.raises(UsageError, match="edited after it was frozen") as error:
        load_set(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in str(error.value)
    assert load_set(path, check_hash=False).steps == 601


def test_an_unrecorded_set_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path, "ci.json").rename(tmp_path / "mine.json")
    with pytest.raises(UsageError, match="no hash recorded"):
        load_set(path)


SHOT = {"kind": "analytic", "seed": 0, "width": 96, "height": 64, "frames": 6}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"schema": "plateforge.benchset/9"}, "expected a bench set of schema", id="schema"),
        pytest.param(
            {"shots": [{**SHOT, "kind": "polaroid"}]},
            r"unknown shot kind 'polaroid'; known kinds: \['analytic', 'cycles', 'footage'\]",
            id="kind",
        ),
        pytest.param(
            {"shots": [{k: v for k, v in SHOT.items() if k != "frames"}]},
            "frames must be an integer",
            id="missing-field",
        ),
        pytest.param({"shots": [{**SHOT, "fps": 24}]}, "unknown field", id="extra-field"),
        pytest.param({"tools": ["paint"]}, "tools must be", id="tool"),
        pytest.param({"keys": []}, "keys must be", id="keys"),
        pytest.param({"shots": [SHOT, SHOT]}, "listed twice", id="twice"),
    ],
)
def test_a_bad_set_is_refused_saying_what_was_expected(tmp_path: Path, change: dict[str, object], message: str) -> None:
    data = {**json.loads((SETS / "ci.json").read_text()), **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=message):
        load_set(path, check_hash=False)


# -- the production-like kinds: Cycles renders and real footage (issue 16.1) ---------------------


def _cycles_names(spec: str) -> list[str]:
    return [e["name"] for e in json.loads((SETS / f"cycles-{spec}.json").read_text())["shots"]]


def test_the_production_sets_are_the_cycles_specs_and_the_footage_seeds() -> None:
    report, tune = (load_set(SETS / f"{n}-production.json") for n in ("report", "tune"))
    for bench_set, spec, seeds in ((report, "report", REPORT_SEEDS), (tune, "tune", TUNE_SEEDS)):
        cycles = [s for s in bench_set.shots if s.kind == "cycles"]
        assert [s.name for s in cycles] == _cycles_names(spec) and {s.spec for s in cycles} == {spec}
        assert [s.seed for s in bench_set.shots if s.kind == "footage"] == list(seeds)
        assert set(bench_set.tools) == set(KIND_TOOLS["cycles"])
    assert not {s.id for s in tune.shots} & {s.id for s in report.shots}


def test_a_cycles_shot_takes_its_seed_and_size_from_the_render_spec() -> None:
    report = load_set(SETS / "report-production.json")
    entry = json.loads((SETS / "cycles-report.json").read_text())["shots"][0]
    shot = report.shots[0]
    assert shot == ShotSpec(
        kind="cycles", seed=entry["seed"], width=entry["width"], height=entry["height"], frames=entry["frames"],
        spec="report", name=entry["name"],
    )  # fmt: skip
    assert shot.id == f"cycles-{entry['name']}" and ShotSpec(**shot.to_dict()) == shot
    footage = report.shots[-1]
    assert footage.id == f"footage-{REPORT_SEEDS[-1]}" and footage.tools == ("cleanup",)
    assert footage.to_dict() == {"kind": "footage", "seed": REPORT_SEEDS[-1], "width": 480, "height": 270, "frames": 24}


def _production(tmp_path: Path, shots: list[dict[str, object]], tools: list[str] | None = None) -> Path:
    """A set of ``shots`` beside copies of the Cycles specs and the hashes (as in bench/sets)."""
    for name in ("cycles-report.json", "cycles-tune.json", HASHES_FILE):
        shutil.copy(SETS / name, tmp_path / name)
    data = {**json.loads((SETS / "report-production.json").read_text()), "shots": shots}
    if tools is not None:
        data["tools"] = tools
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    return path


FOOTAGE = {"kind": "footage", "seed": 0, "width": 96, "height": 64, "frames": 6}
CYCLES = {"kind": "cycles", "spec": "report", "name": "report-small"}


def test_a_good_set_of_the_new_kinds_is_read(tmp_path: Path) -> None:
    bench_set = load_set(
        _production(tmp_path, [FOOTAGE, CYCLES, {**CYCLES, "spec": "tune", "name": "tune-small"}]), check_hash=False
    )
    assert [s.id for s in bench_set.shots] == ["footage-0", "cycles-report-small", "cycles-tune-small"]
    assert (bench_set.shots[0].width, bench_set.shots[0].frames) == (96, 6)


@pytest.mark.parametrize(
    ("shots", "tools", "message"),
    [
        pytest.param(
            [{**CYCLES, "name": "report-9"}],
            None,
            r"no Cycles shot 'report-9' in cycles-report.json; its shots: \['report-1'",
            id="cycles-name",
        ),
        pytest.param(
            [{**CYCLES, "spec": "final"}],
            None,
            r"spec must be one of \['tune', 'report'\], got 'final'",
            id="cycles-spec",
        ),
        pytest.param([{**CYCLES, "name": 3}], None, "name must be a non-empty string, got 3", id="cycles-type"),
        pytest.param(
            [{"kind": "cycles", "spec": "report"}],
            None,
            "name must be a non-empty string, got None",
            id="cycles-missing",
        ),
        pytest.param(
            [{**CYCLES, "width": 96}], None, r"unknown field\(s\) \['width'\] for a 'cycles' shot", id="cycles-size"
        ),
        pytest.param(
            [{**FOOTAGE, "name": "x"}], None, r"unknown field\(s\) \['name'\] for a 'footage' shot", id="footage-field"
        ),
        pytest.param([{**FOOTAGE, "width": 8}], None, "width must be an integer >= 32, got 8", id="footage-size"),
        pytest.param([FOOTAGE], ["cleanup", "matte"], r"no shot of this set can score \['matte'\]", id="footage-only"),
        pytest.param([CYCLES, CYCLES], None, "listed twice", id="cycles-twice"),
    ],
)
def test_a_bad_shot_of_the_new_kinds_is_refused(
    tmp_path: Path, shots: list[dict[str, object]], tools: list[str] | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_set(_production(tmp_path, shots, tools), check_hash=False)


def test_a_cycles_shot_of_an_edited_report_spec_is_refused(tmp_path: Path) -> None:
    path = _production(tmp_path, [CYCLES])
    with (tmp_path / HASHES_FILE).open("a") as sums:
        sums.write(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    assert load_set(path).shots[0].name == "report-small"
    spec = json.loads((tmp_path / "cycles-report.json").read_text())
    spec["shots"][0]["samples"] += 1
    (tmp_path / "cycles-report.json").write_text(json.dumps(spec))
    with pytest.raises(UsageError, match=r"cycles-report\.json does not match its hash"):
        load_set(path)
