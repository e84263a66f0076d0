"""Writing answers: CSV and JSON for tools, the Open Job Description frame ranges for a farm
resubmission, and the credits page (plain HTML with an inline SVG bar chart: no script, no build,
opens anywhere). Every name from the index is escaped: cards and manifests are user input."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence

from plateforge.lineage._query import Affected, Credit

__all__ = ["affected_csv", "affected_frames", "affected_json", "credits_csv", "credits_html", "credits_json"]


def affected_json(result: Affected) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"


def affected_csv(result: Affected) -> str:
    """One row per model, then one per frame: ``kind,path,pattern,frame,model,version,sha256,why``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kind", "path", "pattern", "frame", "model", "version", "sha256", "why"])
    for m in result.models:
        writer.writerow(["model", ";".join(m.folders), "", "", m.name, m.version, m.sha256, m.why])
    for f in result.frames:
        frame = "" if f.frame is None else f.frame
        writer.writerow(["frame", f.path, f.pattern, frame, f.model, f.model_version, f.model_sha256, f.why])
    return out.getvalue()


def affected_frames(result: Affected) -> str:
    """Per output pattern, one line: the pattern, a tab, its frames as a range for ``-p Frames=``."""
    return "".join(f"{pattern}\t{frames}\n" for pattern, frames in result.ranges().items())


def credits_json(rows: Sequence[Credit]) -> str:
    return json.dumps([c.to_dict() for c in rows], indent=2) + "\n"


def credits_csv(rows: Sequence[Credit]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["contributor", "roles", "models", "frames", "shots"])
    for c in rows:
        writer.writerow([c.name, "; ".join(c.roles), "; ".join(c.models), c.frames, len(c.shots)])
    return out.getvalue()


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-top: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .35em .8em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
"""


def _chart(rows: Sequence[Credit]) -> str:
    """A horizontal bar per contributor, its length their frames."""
    label_w, bar_w, row_h = 220, 420, 24
    top = max((c.frames for c in rows), default=0) or 1
    height = row_h * len(rows) + 10
    bars = []
    for i, c in enumerate(rows):
        y = 5 + i * row_h
        width = round(bar_w * c.frames / top)
        name = html.escape(c.name)
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{name}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 8}" fill="#3b7dd8">'
            f"<title>{name}: {c.frames} frames</title></rect>"
            f'<text x="{label_w + width + 6}" y="{y + 16}">{c.frames}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" role="img" '
        f'aria-label="frames per contributor">{"".join(bars)}</svg>'
    )


def credits_html(rows: Sequence[Credit], *, title: str = "plateforge credits", note: str = "") -> str:
    """The credits page: a bar chart of frames per contributor, then the table."""
    head = "<tr><th>Contributor</th><th>Roles</th><th>Models their work trained</th><th>Frames</th><th>Shots</th></tr>"
    body = "".join(
        "<tr>"
        f"<td>{html.escape(c.name)}</td><td>{html.escape(', '.join(c.roles))}</td>"
        f"<td>{'<br>'.join(html.escape(m) for m in c.models)}</td>"
        f'<td class="n">{c.frames}</td>'
        f'<td class="n" title="{html.escape(chr(10).join(c.shots))}">{len(c.shots)}</td>'
        "</tr>"
        for c in rows
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(note)}</p>"
        f"{_chart(rows)}"
        f'<table id="credits"><thead>{head}</thead><tbody>{body}</tbody></table>'
        "</body></html>\n"
    )
