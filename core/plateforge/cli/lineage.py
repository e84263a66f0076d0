"""Index and query lineage: what to redo when a licence is withdrawn, whose work trained what.

  plateforge lineage index DIR...            walk output EXRs, model folders and manifests
  plateforge lineage affected --source PATH | --licence ID | --model MODEL [--format json|csv|frames]
  plateforge lineage credits [--format csv|json|html] [--output FILE] [--show] [--since DATE]
  plateforge lineage frame FILE [--json]

The index is an SQLite file, plateforge-lineage.sqlite in the current folder, or the one
PLATEFORGE_LINEAGE_DB names; --db URL picks another (a path, sqlite:///PATH, or
postgresql://USER@HOST:PORT/DB for a PostgreSQL server, with the [postgres] extra installed).
Indexing is incremental: files whose size and modification time did not change are not read
again; a changed file replaces its own rows; a file gone from a walked folder loses its rows.
index shows its progress over the files it reads on stderr (a bar with ETA on a terminal, a line
every 100 files off one; --quiet: none, --verbose: also each file's path).

affected lists the models trained on the source or licence (or named), their fine-tunes and
adapters transitively, and every output frame they made (and any frame made straight from the
withdrawn files). --format frames prints, per output pattern, a tab and its frames as an Open Job
Description range, ready for `-p Frames=` of farm/openjd/process-shot.yaml.

credits lists, per contributor named in the manifests (and so on the model cards), the models
their work trained and the frames those models made (count, and shots: output sequences);
--since counts frames written at or after a date. --format html (or --show, which also opens it)
writes a page with a table and a bar chart.

frame prints the whole chain behind one output frame: its provenance record (as `plateforge
provenance`), the model that made it, each ancestor through fine-tunes, and the contributors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from plateforge import atomic
from plateforge.cli.progress import Progress, add_quiet_argument
from plateforge.lineage import (
    Database,
    IndexReport,
    affected,
    affected_csv,
    affected_frames,
    affected_json,
    credits,
    credits_csv,
    credits_html,
    credits_json,
    frame_chain,
    index_paths,
    open_index,
    parse_since,
)

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge lineage", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{index,affected,credits,frame}")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--db", metavar="URL", help="the index (default: $PLATEFORGE_LINEAGE_DB or ./plateforge-lineage.sqlite)"
        )
        return sub

    index = verb("index", "walk folders (or files) into the index")
    index.add_argument("paths", nargs="+", metavar="DIR")
    loudness = index.add_mutually_exclusive_group()
    loudness.add_argument("--verbose", action="store_true", help="name every file read")
    add_quiet_argument(loudness)

    query = verb("affected", "models and frames that depend on a source, a licence or a model")
    which = query.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", metavar="PATH", help="a source file, or a folder of them")
    which.add_argument("--licence", "--license", metavar="ID", help="a licence id, as the manifests write it")
    which.add_argument("--model", metavar="MODEL", help="NAME, NAME@VERSION, weights sha256 or model folder")
    query.add_argument("--format", choices=("json", "csv", "frames"), default="json")

    credit = verb("credits", "per contributor: models their work trained, frames those made")
    credit.add_argument("--format", choices=("csv", "json", "html"), default="csv")
    credit.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
    credit.add_argument("--show", action="store_true", help="write the HTML page and open it in the web browser")
    credit.add_argument("--since", metavar="DATE", help="count frames written at or after DATE (YYYY-MM-DD)")

    frame = verb("frame", "the whole chain behind one output frame")
    frame.add_argument("file", metavar="FILE")
    frame.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _write(text: str, output: str | None) -> None:
    if output:
        atomic.write_text(output, text)
    else:
        sys.stdout.write(text)


def _index(db: Database, paths: Sequence[str], *, verbose: bool, quiet: bool) -> IndexReport:
    """Index ``paths`` under a :class:`Progress` over the files new or changed since the last run."""
    progress = Progress("lineage index", unit="files", quiet=quiet, every=100)

    def read(done: int, total: int, path: str) -> None:
        if verbose:
            progress.event(path)
        progress.update(done, total, os.path.basename(path))

    try:
        return index_paths(db, paths, progress=read)
    finally:
        progress.close()


def _print_chain(chain: dict[str, object]) -> None:
    record = chain["provenance"]
    assert isinstance(record, dict)
    print(f"frame {chain['frame']}")
    print(f"  made by {record.get('model')}@{record.get('modelVersion')} (tool {record.get('tool', '')})")
    if record.get("sourceFile"):
        print(f"  from {record['sourceFile']} (sha256 {record.get('sourceFileSha256', '')})")
    models = chain["models"]
    assert isinstance(models, list)
    for depth, model in enumerate(models):
        pad = "  " * (depth + 1)
        if not model.get("indexed", True):
            print(
                f"{pad}model {model['name']} sha256 {model['sha256']}: not in the index "
                "(a built-in tool, or a model folder not indexed)"
            )
            continue
        print(f"{pad}model {model['name']}@{model['version']} ({model['tool']}), sha256 {model['sha256']}")
        for folder in model["folders"]:
            print(f"{pad}  folder {folder}")
        for source in model["sources"]:
            people = ", ".join(f"{c['name']} ({c['role']})" for c in source["contributors"])
            print(f"{pad}  trained on {source['path']} [{source['licence']}, {source['rights_holder']}]")
            if people:
                print(f"{pad}    by {people}")
        if model["parent"]:
            print(f"{pad}  fine-tuned from {model['parent']['name']}@{model['parent']['version']}")
        if model["base_model"]:
            print(f"{pad}  base model {model['base_model']['name']} ({model['base_model']['licence']})")
    everyone = chain["contributors"]
    assert isinstance(everyone, list)
    if everyone:
        print("  contributors: " + ", ".join(f"{c['name']} ({c['role']})" for c in everyone))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with open_index(args.db) as db:
        if args.verb == "index":
            report = _index(db, args.paths, verbose=args.verbose, quiet=args.quiet)
            for path, why in report.problems:
                print(f"unreadable: {path}: {why}", file=sys.stderr)
            print(f"{report.summary()} ({db.label})")
            return 1 if report.problems else 0
        if args.verb == "affected":
            result = affected(db, source=args.source, licence=args.licence, model=args.model)
            writer = {"json": affected_json, "csv": affected_csv, "frames": affected_frames}[args.format]
            sys.stdout.write(writer(result))
            return 0
        if args.verb == "credits":
            since = parse_since(args.since) if args.since else None
            rows = credits(db, since_ns=since)
            if args.show or args.format == "html":
                note = f"frames written since {args.since}" if args.since else "all frames in the index"
                page = credits_html(rows, note=f"{note}; index {db.label}")
                target = args.output or (str(Path.cwd() / "plateforge-credits.html") if args.show else None)
                _write(page, target)
                if args.show and target:
                    print(target, file=sys.stderr)
                    webbrowser.open(Path(target).resolve().as_uri())
                return 0
            _write((credits_json if args.format == "json" else credits_csv)(rows), args.output)
            return 0
        chain = frame_chain(db, args.file)
        if args.json:
            print(json.dumps(chain, indent=2, sort_keys=True))
        else:
            _print_chain(chain)
        return 0
