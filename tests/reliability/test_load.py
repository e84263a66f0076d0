"""Load: 8 client processes at once, 200 frames each, of mixed sizes, pixel types and channel
sets, over every transport, against one real server. Every result must come back, be the frame
that was sent (bit for bit, right frame number, right provenance hash), and the server's
resident memory must stay bounded. The figures go to build/reliability/load.json."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TOKEN, start_server
from tests.reliability.helpers import mapped_files, memory_kib, wait_until

pytestmark = pytest.mark.timeout(170)

CLIENTS = 8
FRAMES = 200
#: Peak resident memory the load may add to an idle server. Frames in flight are at most a few MB
#: each and the server runs 4 calls at once; anything near this bound is a leak.
MAX_GROWTH_MIB = 768

CLIENT = r"""
import json, sys, time
import numpy as np
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.frames import Box, Frame
from plateforge.provenance import pixels_digest

address, token, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
SIZES = [(16, 16), (33, 17), (64, 48), (200, 120), (320, 180), (640, 360)]
NAMES = [("R", "G", "B", "A"), ("R", "G", "B"), ("Y",), ("A", "depth.Z")]

def make(number):
    width, height = SIZES[rng.integers(len(SIZES))]
    names = NAMES[rng.integers(len(NAMES))]
    dtype = (np.float16, np.float32)[rng.integers(2)]
    x, y = (int(v) for v in rng.integers(-8, 8, 2))
    window = Box.from_size(width, height, x=x, y=y)
    channels = {n: rng.random((height, width), dtype=np.float32).astype(dtype) for n in names}
    return Frame(channels=channels, data_window=window, display_window=Box(0, 0, 1919, 1079), frame_number=number)

frames = [make(seed * 10000 + i) for i in range(count)]
expected = {f.frame_number: (f, pixels_digest(f)) for f in frames}
ok, mismatched, problems = 0, 0, []
started = time.monotonic()
with Client(address, token=token, retries=3, timeout=120) as client:
    for part, transport in enumerate(("auto", "unary", "stream", "shm")):
        batch = frames[part::4]
        calls = [ProcessCall("passthrough", {"plate": [f]}) for f in batch]
        for sent, result in zip(batch, client.process_sequence(calls, in_flight=2, transport=transport)):
            out = result.outputs["image"]
            want, digest = expected.pop(sent.frame_number)
            same = (
                out.frame_number == sent.frame_number
                and list(out.channels) == list(want.channels)
                and out.data_window == want.data_window
                and all(out.channels[n].dtype == p.dtype and out.channels[n].tobytes() == p.tobytes()
                        for n, p in want.channels.items())
                and result.provenance["plateforge/sourcePixelsDigest"] == digest
            )
            if same:
                ok += 1
            else:
                mismatched += 1
                problems.append(f"frame {sent.frame_number} via {transport} came back different")
print(json.dumps({"ok": ok, "mismatched": mismatched, "lost": len(expected), "problems": problems[:5],
                  "seconds": round(time.monotonic() - started, 2), "shm_used": client._shm.unavailable is None}))
"""


def test_eight_clients_two_hundred_frames_each() -> None:
    proc = start_server()
    pid = proc.process.pid
    try:
        idle_kib = memory_kib(pid, "VmRSS")
        started = time.monotonic()
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, proc.address, TOKEN, str(seed), str(FRAMES)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in range(1, CLIENTS + 1)
        ]
        reports = []
        for child in children:
            out, err = child.communicate(timeout=160)
            assert child.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        seconds = time.monotonic() - started
        peak_kib = memory_kib(pid, "VmHWM")
        after_kib = memory_kib(pid, "VmRSS")
        # Every client closed: their regions are unlinked and the server maps none of them.
        assert wait_until(lambda: not mapped_files(pid, "plateforge-"), timeout=10), mapped_files(pid, "plateforge-")
        assert not [p for p in Path("/dev/shm").glob("plateforge-*") if _owner_was_a_client(p, children)]
    finally:
        proc.stop()

    figures = {
        "clients": CLIENTS,
        "frames_per_client": FRAMES,
        "frames_ok": sum(r["ok"] for r in reports),
        "frames_mismatched": sum(r["mismatched"] for r in reports),
        "frames_lost": sum(r["lost"] for r in reports),
        "seconds": round(seconds, 1),
        "frames_per_second": round(CLIENTS * FRAMES / seconds, 1),
        "server_rss_idle_mib": round(idle_kib / 1024, 1),
        "server_rss_peak_mib": round(peak_kib / 1024, 1),
        "server_rss_after_mib": round(after_kib / 1024, 1),
        "shm_used_by_every_client": all(r["shm_used"] for r in reports),
    }
    out = REPO / "build" / "reliability" / "load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))

    assert figures["frames_ok"] == CLIENTS * FRAMES, [r["problems"] for r in reports]
    assert figures["frames_mismatched"] == 0 and figures["frames_lost"] == 0
    assert figures["shm_used_by_every_client"]
    assert (peak_kib - idle_kib) / 1024 < MAX_GROWTH_MIB, figures


def _owner_was_a_client(path: Path, children: list[subprocess.Popen[str]]) -> bool:
    return any(path.name.startswith(f"plateforge-{child.pid}-") for child in children)
