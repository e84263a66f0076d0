"""The checked-in stubs match the .proto files, and the .proto files document every field."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_proto.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_message_field_and_rpc_has_a_comment() -> None:
    undocumented = []
    for proto in sorted((REPO / "proto" / "plateforge" / "v1").glob("*.proto")):
        lines = proto.read_text().splitlines()
        for k, line in enumerate(lines):
            code = line.split("//")[0].strip()
            if re.match(r"^(message|service|enum|rpc)\s", code):
                previous = lines[k - 1].strip() if k else ""
                if not previous.startswith("//"):
                    undocumented.append(f"{proto.name}:{k + 1}: {code}")
    assert undocumented == [], undocumented
