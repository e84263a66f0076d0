"""Write README.md's quality line and docs/benchmarks.md's quality table from
bench/results/quality.json (or check they are current).

  python scripts/readme_figures.py            # rewrite both between their markers
  python scripts/readme_figures.py --check    # exit 1 if either is not the file's

They are :func:`plateforge_server.evaluation.figures.quality_summary` and
:func:`~plateforge_server.evaluation.figures.quality_table`; tests/test_results_readme.py checks both
pages against the committed results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plateforge import atomic
from plateforge_server.evaluation.figures import END, START, SUMMARY_END, SUMMARY_START, quality_summary, quality_table
from plateforge_server.evaluation.results import read_results

REPO = Path(__file__).resolve().parent.parent


def rendered(page: str, block: str, start_marker: str, end_marker: str, where: Path) -> str:
    """``page`` with the text from ``start_marker`` to ``end_marker`` replaced by ``block``."""
    start, end = page.find(start_marker), page.find(end_marker)
    if start < 0 or end < start:
        raise SystemExit(f"{where} has no markers {start_marker!r} ... {end_marker!r}")
    return page[:start] + block + page[end + len(end_marker) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "quality.json")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    document = read_results(args.results)
    pages = (
        (args.readme, quality_summary(document), SUMMARY_START, SUMMARY_END),
        (args.docs, quality_table(document), START, END),
    )
    stale, changed = [], []
    for path, block, start, end in pages:
        current = path.read_text(encoding="utf-8")
        wanted = rendered(current, block, start, end, path)
        if wanted == current:
            continue
        stale.append(str(path))
        if not args.check:
            atomic.write_text(path, wanted)
            changed.append(str(path))
    if args.check:
        if stale:
            print(f"stale: {', '.join(stale)}; run python scripts/readme_figures.py", file=sys.stderr)
            return 1
        return 0
    print(json.dumps({"changed": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
