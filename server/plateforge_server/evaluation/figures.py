"""The README's quality figures and the docs' quality table, rendered from a results file
(``bench/results/quality.json``).

``scripts/readme_figures.py`` writes :func:`quality_summary` into README.md between
:data:`SUMMARY_START` and :data:`SUMMARY_END` (one line: the README stays short) and
:func:`quality_table` into docs/benchmarks.md between :data:`START` and :data:`END`;
``tests/test_results_readme.py`` checks both against the committed file, figure by figure, so
neither page can quote a figure the file does not hold.

One row per tool, shot (and K for relight and look) and learned method: the tool's main metric
for ``classical``, the learned method and the outside baseline, the margin (learned minus
classical), the display-referred figure (classical -> learned) and the training seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "END",
    "START",
    "SUMMARY_END",
    "SUMMARY_START",
    "TABLES",
    "Column",
    "quality_rows",
    "quality_summary",
    "quality_table",
    "summary_k",
]

START: Final = "<!-- quality-table: start (scripts/readme_figures.py writes this from bench/results/quality.json) -->"
END: Final = "<!-- quality-table: end -->"
SUMMARY_START: Final = (
    "<!-- quality-summary: start (scripts/readme_figures.py writes this from bench/results/quality.json) -->"
)
SUMMARY_END: Final = "<!-- quality-summary: end -->"


@dataclass(frozen=True)
class Column:
    """How one tool's rows read: its metric, the outside baseline(s) tried in order, the display figure."""

    metric: str
    label: str
    baselines: tuple[str, ...]
    display: str
    display_label: str
    digits: int = 2


#: Per tool (in table order).
TABLES: Final[Mapping[str, Column]] = {
    "cleanup": Column("psnr", "PSNR in the mask, dB", ("telea",), "psnr_display", "sRGB-view PSNR in the mask, dB"),
    # closed-form matting (pymatting) where the matte evaluation measures it
    "matte": Column("sad", "alpha SAD", ("closed_form", "pymatting"), "psnr", "composite PSNR, dB", digits=4),
    "relight": Column("psnr", "PSNR, dB", ("classical_lut",), "delta_e2000", "CIEDE2000"),
    "look": Column("psnr", "PSNR, dB", ("classical_lut",), "delta_e2000", "CIEDE2000"),
}
LEARNED: Final = ("learned", "learned_aov")


def _fmt(value: object, digits: int) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:.{digits}f}"


def quality_rows(entries: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """The table's rows as text cells, keyed by column name, from a results file's ``entries``."""
    for tool, column in TABLES.items():
        for key, entry in entries.items():
            shot, _, entry_tool = key.rpartition("/")
            if entry_tool != tool:
                continue
            figures = entry["figures"]
            groups = (
                [(shot, figures)]
                if "classical" in figures
                else [(f"{shot} K={k[1:]}", v) for k, v in figures.items() if isinstance(v, dict) and "classical" in v]
            )
            for where, methods in groups:
                classical = methods["classical"]
                baseline = next((b for b in column.baselines if b in methods), None)
                for method in LEARNED:
                    learned = methods.get(method)
                    if not isinstance(learned, dict):
                        continue
                    margin = learned[column.metric] - classical[column.metric]
                    yield {
                        "tool": tool if method == "learned" else f"{tool} (AOVs)",
                        "shot": where,
                        "metric": column.label,
                        "classical": _fmt(classical.get(column.metric), column.digits),
                        "learned": _fmt(learned.get(column.metric), column.digits),
                        "baseline": (
                            f"{_fmt(methods[baseline].get(column.metric), column.digits)} ({baseline})"
                            if baseline
                            else "-"
                        ),
                        "margin": f"{margin:+.{column.digits}f}",
                        "display": (
                            f"{_fmt(classical.get(column.display), 2)} -> {_fmt(learned.get(column.display), 2)}"
                            f" ({column.display_label})"
                        ),
                        "train_s": _fmt(learned.get("train_seconds"), 0),
                    }


HEADER: Final = ("tool", "shot", "metric", "classical", "learned", "baseline", "margin", "display", "train_s")
TITLES: Final = (
    "tool", "shot", "metric", "classical", "learned", "outside baseline", "learned - classical",
    "through the view (classical -> learned)", "training, s",
)  # fmt: skip


def quality_table(document: Mapping[str, Any]) -> str:
    """The Markdown block (markers included) for a results file's content."""
    settings = document.get("settings", {})
    reduced = settings.get("reduced_from_set") or {}
    machine = document.get("machine", {})
    lines = [
        START,
        "",
        f"Set `{document['set']['name']}` (`{document['set']['path']}`, sha256 `{document['set']['sha256'][:12]}…`), "
        f"{settings.get('steps')} training steps, tools' defaults; measured {document['date'][:10]} at commit "
        f"`{document['commit'][:10]}` on {machine.get('cpu', '?')} ({machine.get('device', '?')}, "
        f"{machine.get('torch_threads', '?')} torch thread(s)), by `{document['command']}`.",
    ]
    if reduced:
        shown = ", ".join(f"{k} {v}" for k, v in reduced.items())
        lines.append(f"Reduced from the set: {shown}.")
    lines += ["", "| " + " | ".join(TITLES) + " |", "|" + "---|" * len(TITLES)]
    for row in quality_rows(document["entries"]):
        lines.append("| " + " | ".join(row[c] for c in HEADER) + " |")
    lines += ["", END]
    return "\n".join(lines)


def summary_k(keys: list[int]) -> int:
    """The K the README quotes for relight and look: 4 (the issue's target) if measured, else the most."""
    return 4 if 4 in keys else max(keys)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _methods(document: Mapping[str, Any], tool: str) -> list[Mapping[str, Any]]:
    """Per shot of the file, ``{method: figures}`` of ``tool`` (at :func:`summary_k` for relight, look)."""
    k = f"k{summary_k(list(document['settings']['keys']))}"
    found = []
    for key, entry in document["entries"].items():
        if key.rpartition("/")[2] == tool:
            figures = entry["figures"]
            found.append(figures if "classical" in figures else figures[k])
    return found


def quality_summary(document: Mapping[str, Any]) -> str:
    """The README's one line (markers included): per tool, classical and learned on its metric and
    through the view, means over the file's shots."""
    shots = sorted({key.rpartition("/")[0] for key in document["entries"]})
    settings = document["settings"]
    reduced = settings.get("reduced_from_set") or {}
    size = " reduced to " + ", ".join(f"{k} {v}" for k, v in reduced.items() if k != "tools") if reduced else ""
    parts = []
    for tool, column in TABLES.items():
        methods = _methods(document, tool)
        if not methods:
            continue
        digits = column.digits
        classical = _mean([m["classical"][column.metric] for m in methods])
        learned = _mean([m["learned"][column.metric] for m in methods])
        view_c = _mean([m["classical"].get(column.display, float("nan")) for m in methods])
        view_l = _mean([m["learned"].get(column.display, float("nan")) for m in methods])
        at = f" at K = {summary_k(list(settings['keys']))}" if tool in ("relight", "look") else ""
        parts.append(
            f"{tool} {column.label} {classical:.{digits}f} -> {learned:.{digits}f}{at}"
            f" ({column.display_label} {view_c:.2f} -> {view_l:.2f})"
        )
    return "\n".join(
        [
            SUMMARY_START,
            f"Measured, classical -> learned with the tools' defaults, mean over {len(shots)} shot(s) of the "
            f"benchmark's report set{size} (`bench/results/quality.json`; table, command and machine: "
            f"[docs/benchmarks.md](docs/benchmarks.md#quality-tune-and-report-sets)): " + "; ".join(parts) + ".",
            SUMMARY_END,
        ]
    )
