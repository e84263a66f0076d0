"""The README's quality table, rendered from a results file (``bench/results/quality.json``).

The table is written into README.md between :data:`START` and :data:`END` by
``scripts/readme_figures.py``, and ``tests/test_results_readme.py`` checks that the README's
table is what :func:`quality_table` renders from the committed file, figure by figure, so the
README cannot quote a figure the file does not hold.

One row per tool, shot (and K for relight and look) and learned method: the tool's main metric
for ``classical``, the learned method and the outside baseline, the margin (learned minus
classical), the display-referred figure (classical -> learned) and the training seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["END", "START", "TABLES", "Column", "quality_rows", "quality_table"]

START: Final = "<!-- quality-table: start (scripts/readme_figures.py writes this from bench/results/quality.json) -->"
END: Final = "<!-- quality-table: end -->"


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
