"""The status page: HTML rendered here from a snapshot, and a few lines of JS that poll
``/api/status`` and redraw the tables. No build step, nothing fetched from elsewhere.

The script writes every value with ``textContent`` (never ``innerHTML``), and the server side
escapes every value, so a job's dataset path or error text cannot inject markup.
"""

from __future__ import annotations

import datetime
import html
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["POLL_SECONDS", "SCRIPT", "STYLE", "as_json", "render_page"]

#: What preview.png's columns are (server/plateforge_server/training/pictures.py).
PREVIEW_CAPTION = "preview, per validation image: input | classical | learned | target (display sRGB)"

#: How often the page asks for a fresh snapshot.
POLL_SECONDS = 1.0

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #1b1d21; color: #dde; }
h1 { font-size: 20px; margin: 0 0 .2em; } h2 { font-size: 16px; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #333; vertical-align: top; }
th { color: #99a; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; color: #bbc; }
.state-RUNNING { color: #7cf; } .state-SUCCEEDED { color: #7d7; } .state-FAILED, .state-BROKEN { color: #f77; }
.state-QUEUED { color: #ccc; } .state-CANCELLED, .state-INTERRUPTED { color: #db7; }
.pictures img { height: 240px; max-width: 100%; margin-right: 6px; background: #111; image-rendering: pixelated; }
a { color: #8af; }
.muted { color: #889; } #health span { margin-right: 1.5em; }
progress { width: 90px; } td.step { white-space: nowrap; }
"""

_SCRIPT = """
const POLL_MS = %(poll_ms)d;
const CAPTION = %(caption)s;
function cell(row, text, cls) {
  const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; row.appendChild(td);
  return td;
}
function fixed(v, n) { return v === null || v === undefined ? '' : Number(v).toFixed(n); }
function when(t) { return t ? new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19) : ''; }
function picture(td, job, name) {
  const version = job.images[name];
  if (version === undefined) return;
  const img = document.createElement('img');
  img.className = name.replace('.png', ''); img.alt = name + ' of job ' + job.id;
  img.src = 'jobs/' + encodeURIComponent(job.id) + '/' + name + '?v=' + version;
  td.appendChild(img);
}
function drawJobs(jobs) {
  const body = document.getElementById('jobs');
  body.replaceChildren();
  for (const job of jobs) {
    const row = document.createElement('tr'); row.dataset.job = job.id; row.dataset.state = job.state;
    cell(row, job.id).className = 'id';
    cell(row, job.state, 'state state-' + job.state);
    cell(row, job.tool); cell(row, job.dataset);
    const progress = cell(row, '', 'step num');
    const bar = document.createElement('progress'); bar.max = job.steps || 1; bar.value = job.step;
    progress.append(bar, ' ' + job.step + ' / ' + job.steps);
    cell(row, fixed(job.loss, 5), 'loss num'); cell(row, fixed(job.val_psnr, 2), 'psnr num');
    cell(row, fixed(job.steps_per_second, 2), 'rate num'); cell(row, job.error, 'error');
    body.appendChild(row);
    const pics = document.createElement('tr'); pics.className = 'pictures';
    const td = document.createElement('td'); td.colSpan = 9; pics.appendChild(td);
    picture(td, job, 'loss.png'); picture(td, job, 'preview.png');
    if (job.images['preview.png'] !== undefined) {
      const caption = document.createElement('div'); caption.className = 'muted';
      caption.textContent = CAPTION; td.appendChild(caption);
    }
    if (td.childNodes.length) body.appendChild(pics);
  }
}
function drawRows(id, rows, columns) {
  const body = document.getElementById(id);
  body.replaceChildren();
  for (const item of rows) {
    const row = document.createElement('tr');
    for (const [key, fmt, cls] of columns) cell(row, fmt(item[key]), cls);
    body.appendChild(row);
  }
}
function draw(s) {
  document.getElementById('uptime').textContent = Math.round(s.server.uptime_seconds) + ' s';
  document.getElementById('streams').textContent = s.server.active_streams;
  document.getElementById('queue').textContent = s.queue_length;
  document.getElementById('updated').textContent = new Date().toISOString().slice(11, 19);
  drawJobs(s.jobs);
  drawRows('models', s.models, [['name', String], ['version', String], ['tool', String],
    ['hash', h => h.slice(0, 16)], ['licences', String]]);
  drawRows('requests', s.requests, [['at', when], ['model', String], ['transport', String], ['status', String],
    ['seconds', v => fixed(v, 3), 'num'], ['bytes_in', String, 'num'], ['bytes_out', String, 'num']]);
}
async function poll() {
  try {
    const reply = await fetch('api/status', {cache: 'no-store', credentials: 'same-origin'});
    if (reply.ok) draw(await reply.json());
    document.getElementById('error').textContent = reply.ok ? '' : 'status ' + reply.status;
  } catch (e) { document.getElementById('error').textContent = String(e); }
  setTimeout(poll, POLL_MS);
}
setTimeout(poll, POLL_MS);
"""

#: The page's script, served as a file of its own so the page's CSP can forbid inline scripts.
SCRIPT = _SCRIPT % {"poll_ms": int(POLL_SECONDS * 1000), "caption": json.dumps(PREVIEW_CAPTION)}


def _text(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _fixed(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _when(seconds: float | None) -> str:
    if not seconds:
        return ""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _rows(items: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Callable[[Any], str], str]]) -> str:
    lines = []
    for item in items:
        cells = "".join(
            f'<td class="{cls}">{_text(fmt(item[key]))}</td>' if cls else f"<td>{_text(fmt(item[key]))}</td>"
            for key, fmt, cls in columns
        )
        lines.append(f"<tr>{cells}</tr>")
    return "\n".join(lines)


def _job_rows(jobs: Sequence[dict[str, Any]]) -> str:
    lines = []
    for job in jobs:
        job_id, state = _text(job["id"]), _text(job["state"])
        lines.append(
            f'<tr data-job="{job_id}" data-state="{state}"><td class="id">{job_id}</td>'
            f'<td class="state state-{state}">{state}</td><td>{_text(job["tool"])}</td>'
            f"<td>{_text(job['dataset'])}</td>"
            f'<td class="step num"><progress max="{job["steps"] or 1}" value="{job["step"]}"></progress> '
            f"{job['step']} / {job['steps']}</td>"
            f'<td class="loss num">{_fixed(job["loss"], 5)}</td>'
            f'<td class="psnr num">{_fixed(job["val_psnr"], 2)}</td>'
            f'<td class="rate num">{_fixed(job["steps_per_second"], 2)}</td>'
            f'<td class="error">{_text(job["error"])}</td>'
            "</tr>"
        )
        pictures = "".join(
            f'<img class="{name[:-4]}" alt="{name} of job {job_id}" src="jobs/{_text(job["id"])}/{name}?v={version}">'
            for name, version in job["images"].items()
        )
        if "preview.png" in job["images"]:
            pictures += f'<div class="muted">{_text(PREVIEW_CAPTION)}</div>'
        if pictures:
            lines.append(f'<tr class="pictures"><td colspan="9">{pictures}</td></tr>')
    return "\n".join(lines)


def render_page(snapshot: dict[str, Any]) -> str:
    server = snapshot["server"]
    health = " ".join(
        f"<span>{_text(name or 'server')}: <b>{_text(state)}</b></span>" for name, state in server["health"].items()
    )
    models = _rows(
        snapshot["models"],
        [
            ("name", str, ""),
            ("version", str, ""),
            ("tool", str, ""),
            ("hash", lambda h: h[:16], ""),
            ("licences", str, ""),
        ],
    )
    requests = _rows(
        snapshot["requests"],
        [
            ("at", _when, ""),
            ("model", str, ""),
            ("transport", str, ""),
            ("status", str, ""),
            ("seconds", lambda v: f"{v:.3f}", "num"),
            ("bytes_in", str, "num"),
            ("bytes_out", str, "num"),
        ],
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plateforge status</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="status.css"></head>
<body>
<h1>plateforge {_text(server["version"])}</h1>
<div id="health">{health} <span>device: <b>{_text(server["device"])}</b></span>
<span>up: <b id="uptime">{round(server["uptime_seconds"])} s</b></span>
<span>open streams: <b id="streams">{server["active_streams"]}</b></span>
<span>queued jobs: <b id="queue">{snapshot["queue_length"]}</b></span>
<span class="muted">updated <span id="updated">{_text(_when(time.time())[11:])}</span></span>
<span id="error" class="state-FAILED"></span></div>
<h2>Jobs</h2>
<table><thead><tr><th>id</th><th>state</th><th>tool</th><th>dataset</th><th>step</th><th>loss</th>
<th>val PSNR (dB)</th><th>steps/s</th><th>error</th></tr></thead>
<tbody id="jobs">{_job_rows(snapshot["jobs"])}</tbody></table>
<h2>Models</h2>
<table><thead><tr><th>name</th><th>version</th><th>tool</th><th>hash</th><th>provenance and licences</th></tr></thead>
<tbody id="models">{models}</tbody></table>
<h2>Recent requests</h2>
<table><thead><tr><th>at (UTC)</th><th>model</th><th>transport</th><th>status</th><th>seconds</th><th>bytes in</th>
<th>bytes out</th></tr></thead>
<tbody id="requests">{requests}</tbody></table>
<p class="muted">Read-only. Metrics for Prometheus: <a href="metrics">/metrics</a>; this page as JSON:
<a href="api/status">/api/status</a>.</p>
<script src="status.js"></script>
</body></html>
"""


def as_json(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, allow_nan=False)
