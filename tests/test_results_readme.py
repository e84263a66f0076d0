"""README's quality figures (and docs/benchmarks.md's table) are the committed results file's
(issue 16.1), and that file is what today's bench with today's defaults runs: the report set's
hash and every entry's config hash."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from plateforge_server.evaluation.benchsets import ShotSpec
from plateforge_server.evaluation.figures import END, START, SUMMARY_END, SUMMARY_START, TABLES, summary_k
from plateforge_server.evaluation.results import read_results

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "quality.json"
README = REPO / "README.md"
DOCS = REPO / "docs" / "benchmarks.md"
RERUN = "rerun the bench: see docs/benchmarks.md (the coordinator's one command), then python scripts/readme_figures.py"


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", REPO / "bench" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return read_results(RESULTS)


def _table_rows() -> list[dict[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    block = text[text.index(START) : text.index(END)]
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| tool |")]
    names = ("tool", "shot", "metric", "classical", "learned", "baseline", "margin", "display", "train_s")
    return [dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True)) for row in rows]


def test_the_results_file_says_what_produced_it(results: dict[str, Any]) -> None:
    assert results["command"].startswith("python bench/quality.py --set report")
    assert re.fullmatch(r"[0-9a-f]{40}", results["commit"]) and results["dirty"] is False
    assert {"cpu", "cpus", "torch_threads", "torch", "device"} <= set(results["machine"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", results["date"])
    report = REPO / results["set"]["path"]
    assert results["set"]["name"] == "report"
    assert results["set"]["sha256"] == hashlib.sha256(report.read_bytes()).hexdigest(), "the report set changed"
    # Every shot x tool the run names has its entry (a reduced run may name fewer tools than TABLES).
    shots = [f"{s['kind']}-{s['seed']}" for s in results["settings"]["shots"]]
    tools = results["settings"]["tools"]
    assert set(tools) <= set(TABLES) and "cleanup" in tools and "matte" in tools
    assert list(results["entries"]) == [f"{shot}/{tool}" for shot in shots for tool in tools]


def test_every_entry_was_measured_with_todays_defaults(results: dict[str, Any]) -> None:
    bench = _bench_module()
    settings = results["settings"]
    args = argparse.Namespace(
        steps=settings["steps"], device=results["machine"]["device"], params=settings["params"],
        keys=tuple(settings["keys"]),
    )  # fmt: skip
    shots = {f"{s['kind']}-{s['seed']}": ShotSpec(**s) for s in settings["shots"]}
    for key, entry in results["entries"].items():
        shot, _, tool = key.rpartition("/")
        assert entry["config_hash"] == bench.entry_hash(args, shots[shot], tool), f"{key} is stale: {RERUN}"


def test_the_readme_quotes_the_results_file(results: dict[str, Any]) -> None:
    text = README.read_text(encoding="utf-8")
    line = text[text.index(SUMMARY_START) + len(SUMMARY_START) : text.index(SUMMARY_END)]
    k = f"k{summary_k(results['settings']['keys'])}"
    for tool in results["settings"]["tools"]:
        column = TABLES[tool]
        found = re.search(rf"{tool} {re.escape(column.label)} (-?[\d.]+) -> (-?[\d.]+)", line)
        assert found is not None, f"README does not quote {tool}: {RERUN}"
        shots = [e["figures"] for key, e in results["entries"].items() if key.endswith(f"/{tool}")]
        methods = [f if "classical" in f else f[k] for f in shots]
        for quoted, method in zip(found.groups(), ("classical", "learned"), strict=True):
            mean = sum(m[method][column.metric] for m in methods) / len(methods)
            assert float(quoted) == round(mean, column.digits), f"README's {tool} {method}: {RERUN}"


def test_the_docs_table_is_the_results_file(results: dict[str, Any]) -> None:
    rows = _table_rows()
    assert len(rows) >= len(results["entries"])
    for row in rows:
        tool = row["tool"].removesuffix(" (AOVs)")
        method = "learned_aov" if row["tool"].endswith("(AOVs)") else "learned"
        shot, _, k = row["shot"].partition(" K=")
        figures = results["entries"][f"{shot}/{tool}"]["figures"]
        methods = figures[f"k{k}"] if k else figures
        metric = TABLES[tool].metric
        digits = TABLES[tool].digits
        assert float(row["classical"]) == round(methods["classical"][metric], digits), row
        assert float(row["learned"]) == round(methods[method][metric], digits), row
        margin = methods[method][metric] - methods["classical"][metric]
        assert float(row["margin"]) == pytest.approx(margin, abs=10**-digits), row


@pytest.mark.parametrize(("page", "marker"), [(README, SUMMARY_START), (DOCS, START)], ids=["readme", "docs"])
def test_a_stale_page_is_caught_and_rewritten(tmp_path: Path, page: Path, marker: str) -> None:
    copies = {"--readme": tmp_path / "README.md", "--docs": tmp_path / "benchmarks.md"}
    for copy, source in zip(copies.values(), (README, DOCS), strict=True):
        copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    target = copies["--readme"] if page == README else copies["--docs"]
    text = target.read_text(encoding="utf-8")
    start = text.index(marker)
    first = re.search(r"(\d+\.\d+)", text[start:])  # change one figure: the check must fail
    assert first is not None
    target.write_text(text[: start + first.start(1)] + "99.99" + text[start + first.end(1) :], encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "readme_figures.py")]
    script += [arg for flag, path in copies.items() for arg in (flag, str(path))]
    assert subprocess.run([*script, "--check"], capture_output=True, timeout=120).returncode == 1
    assert subprocess.run(script, capture_output=True, timeout=120).returncode == 0  # rewrites it
    assert target.read_text(encoding="utf-8") == text
    assert subprocess.run([*script, "--check"], capture_output=True, timeout=120).returncode == 0


def test_the_pages_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_figures.py"), "--check"], capture_output=True, timeout=120
    )
    assert done.returncode == 0, f"{done.stderr.decode()}: {RERUN}"
