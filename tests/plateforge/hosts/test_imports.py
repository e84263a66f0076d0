"""plateforge.hosts is host-side code: it imports without torch, OpenCV or plateforge_server."""

from __future__ import annotations

import subprocess
import sys

from tests.plateforge.test_host_imports import BLOCKER

HOSTS_MODULES = [
    "plateforge.hosts",
    "plateforge.hosts.cache",
    "plateforge.hosts.connection",
    "plateforge.hosts.knobs",
    "plateforge.hosts.process",
    "plateforge.hosts.training",
    "plateforge.hosts.worker",
    "plateforge.cli.nuke",
]


def test_hosts_import_without_torch_or_the_server() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, *HOSTS_MODULES], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
