"""Write README.md's quality table from bench/results/quality.json (or check it is current).

  python scripts/readme_figures.py            # rewrite the table between its markers
  python scripts/readme_figures.py --check    # exit 1 if the README's table is not the file's

The table is :func:`plateforge.server.evaluation.figures.quality_table`; tests/test_results_readme.py
checks the README against the committed results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plateforge.server.evaluation.figures import END, START, quality_table
from plateforge.server.evaluation.results import read_results
from plateforge.server.modelcard import _atomic_target

REPO = Path(__file__).resolve().parent.parent


def rendered(readme: str, results: Path) -> str:
    """``readme`` with the text between the markers replaced by the table of ``results``."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no quality-table markers ({START!r} ... {END!r})")
    return readme[:start] + quality_table(read_results(results)) + readme[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "quality.json")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    wanted = rendered(current, args.results)
    if args.check:
        if wanted != current:
            print(f"{args.readme} is stale: run python scripts/readme_figures.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        with _atomic_target(args.readme) as temp:
            temp.write_text(wanted, encoding="utf-8")
    print(json.dumps({"readme": str(args.readme), "changed": wanted != current}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
