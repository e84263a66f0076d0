"""Running a command-line entry point: one line per expected error, and finding the server's.

:func:`run_command` is how every ``main(argv)`` of plateforge runs, the host CLI's verbs
(``plateforge VERB``) and the server's own entry points (``python -m plateforge_server``): an
expected failure (bad input, no server, a full disk) is one sentence and an exit status
(:mod:`plateforge.messages`), never a traceback; a bug keeps its traceback.

:func:`server_main` is how the host CLI reaches the server package without importing it: the
server is found by name, at call time, and a Python without it is told how to install it. So the
host package never imports the server (the import contracts in pyproject.toml check it), and the
server never imports the host CLI: each has its own entry point.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

from plateforge.errors import UsageError

__all__ = ["SERVER_INSTALL", "SERVER_PACKAGE", "quiet_grpc", "run_command", "server_main"]

#: The server package, found by name (the host never imports it).
SERVER_PACKAGE: Final = "plateforge_server"
#: How to install it.
SERVER_INSTALL: Final = "pip install -c constraints.txt 'plateforge[server]'"

Main = Callable[[Sequence[str]], int]


def run_command(name: str, main: Main, argv: Sequence[str]) -> int:
    """``main(argv)``'s exit status; an expected error is printed as ``NAME: error: SENTENCE`` (and
    a ``details:`` line) with its exit status, an interrupt as ``NAME: interrupted`` (130)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from plateforge.messages import EXIT_INTERRUPTED, explain, is_expected

    try:
        return int(main(list(argv)))
    except Exception as error:
        if not is_expected(error):
            raise  # a bug: its traceback is what a report needs
        told = explain(error)
        print(f"{name}: error: {told.sentence}", file=sys.stderr)
        if told.details:
            print(f"details: {told.details}", file=sys.stderr)
        return told.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def server_main(module: str) -> Main:
    """``main`` of the server package's entry point ``module`` (e.g. ``"serve"``), imported by name
    now; a Python without the server (or its dependencies) gets a :class:`UsageError` saying how to
    install it."""
    try:
        entry = importlib.import_module(f"{SERVER_PACKAGE}.{module}")
    except ImportError as error:
        if error.name is not None and (error.name + ".").startswith(SERVER_PACKAGE + "."):
            raise UsageError(
                f"the plateforge server is not installed in this Python ({sys.executable}); {SERVER_INSTALL}"
            ) from None
        # The server is there but something it needs is not (torch, OpenCV ...).
        raise UsageError(f"this Python cannot run the server ({error}); {SERVER_INSTALL}") from None
    main: Main = entry.main
    return main


def quiet_grpc(*, serving: bool) -> None:
    """gRPC core writes its own log lines to stderr (a failed TLS handshake, a refused bind); every
    failure it meets reaches the user as plateforge.messages' sentence instead. A server keeps its
    errors for its log. GRPC_VERBOSITY set by the user (to debug) wins. Call before gRPC loads."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR" if serving else "NONE")
