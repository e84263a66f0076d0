"""Run the inference server until SIGTERM or SIGINT.

Prints `listening on HOST:PORT` once ready. Binds 127.0.0.1 unless --host says otherwise, and
refuses a non-loopback address without a token. Needs the server package (plateforge[server]):
this verb runs its own entry point, `python -m plateforge_server` (`plateforge serve --help`
lists its options).
"""

from __future__ import annotations

from collections.abc import Sequence

from plateforge.commands import server_main


def main(argv: Sequence[str] | None = None) -> int:
    return server_main("serve")(list(argv or ()))
