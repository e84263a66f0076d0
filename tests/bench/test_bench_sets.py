"""The benchmark's shot sets (issue 16.1): tune and report seeds apart, every set frozen by its hash."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from plateforge.errors import UsageError
from plateforge_server.evaluation.benchsets import HASHES_FILE, load_set, recorded_hashes

SETS = Path(__file__).resolve().parents[2] / "bench" / "sets"


def test_every_set_file_is_recorded_with_its_hash() -> None:
    recorded = recorded_hashes(SETS)
    # cycles-tune.json is the Cycles renders' tune spec (bench/cycles): it may change; every other set is frozen.
    files = {p.name for p in SETS.glob("*.json") if p.name != "cycles-tune.json"}
    assert {"tune.json", "report.json", "ci.json", "cycles-report.json"} <= files
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
            r"unknown shot kind 'polaroid'; known kinds: \['analytic'\]",
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
