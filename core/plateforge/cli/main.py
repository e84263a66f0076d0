"""plateforge: project-tuned ML tools for compositors.

usage: plateforge VERB [options]   (plateforge VERB --help for a verb's options)

exit status: 0 done; 1 ran, but part of the work failed; 2 refused (fix what the error says,
nothing was done); 3 no server could be reached; 130 interrupted. An error is one line saying
what to fix, then a `details:` line with the raw cause where there is one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from plateforge.commands import quiet_grpc, run_command

__all__ = ["VERBS", "main"]

#: verb -> module under plateforge.cli; each module has main(argv) and a docstring that is its help.
VERBS = {
    "serve": "serve",
    "models": "models",
    "info": "info",
    "provenance": "provenance",
    "proxy": "proxy",
    "credentials": "credentials",
    "process": "process",
    "demo": "demo",
    "train": "train",
    "jobs": "jobs",
    "job": "job",
    "nuke": "nuke",
    "blender": "blender",
    "base-model": "base_model",
    "lineage": "lineage",
    "export": "export",
}


def _usage() -> str:
    lines = [__doc__.strip() if __doc__ else "", "", "verbs:"]
    for verb, module in VERBS.items():
        doc = importlib.import_module(f"plateforge.cli.{module}").__doc__ or ""
        lines.append(f"  {verb:<10} {doc.strip().splitlines()[0] if doc.strip() else ''}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("--version", "version"):
        from plateforge import __version__

        print(f"plateforge {__version__}")
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"plateforge: unknown verb {verb!r}; verbs: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    quiet_grpc(serving=verb == "serve")  # before gRPC loads
    module = importlib.import_module(f"plateforge.cli.{VERBS[verb]}")
    return run_command(f"plateforge {verb}", module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
