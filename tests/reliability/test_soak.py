"""Soak: idle and anonymous streams held open by the dozen while clients work, against one real
server process. 64 idle ProcessStream calls (half never send, half stop after their header) and
64 anonymous health Watch streams stay open while 4 clients process 50 frames each over the
stream and unary transports. Every frame must come back bit for bit, ListModels must answer
within a second throughout, the server's resident memory must stay bounded, and a flood beyond
the stream cap must be refused with RESOURCE_EXHAUSTED. The figures go to
build/reliability/soak.json."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from plateforge.client import Client
from plateforge.frames import Frame
from plateforge.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import REPO, TOKEN, start_server
from tests.plateforge_server.test_limits import AUTH, OpenStreams
from tests.reliability.helpers import memory_kib

pytestmark = pytest.mark.timeout(240)

IDLE_STREAMS = 64
WATCHES = 64
CLIENTS = 4
FRAMES = 50
#: Streams the soak holds (idle + watches) plus its clients' (2 in flight each), with room for
#: calls that are ending while others start; a flood goes past it.
PER_PEER_CAP = IDLE_STREAMS + WATCHES + 2 * CLIENTS + 8
#: Resident memory the soak may add to the idle server. Held streams cost KiB each (the soak
#: records what they add); the clients keep 8 frames of up to 14.7 MB in flight, each held as
#: bytes, arrays and its result at once, plus allocator arenas (tests/reliability/test_load.py's bound).
MAX_GROWTH_MIB = 768
#: What the 128 held streams may add to the idle server's resident memory.
MAX_HELD_GROWTH_MIB = 64


CLIENT = r"""
import json, sys
import numpy as np
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.frames import Box, Frame
from plateforge.provenance import pixels_digest

address, token, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
frames = []
for i in range(count):
    width, height = ((64, 48), (320, 180), (1280, 720))[i % 3]
    dtype = (np.float16, np.float32)[i % 2]
    channels = {n: rng.random((height, width), dtype=np.float32).astype(dtype) for n in ("R", "G", "B", "A")}
    window = Box.from_size(width, height, x=int(rng.integers(-4, 4)), y=int(rng.integers(-4, 4)))
    frames.append(Frame(channels=channels, data_window=window, display_window=Box(0, 0, 1919, 1079),
                        frame_number=seed * 1000 + i))
problems = []
with Client(address, token=token, retries=0, timeout=60) as client:
    for part, transport in enumerate(("stream", "unary")):
        batch = frames[part::2]
        calls = [ProcessCall("passthrough", {"plate": [f]}) for f in batch]
        for sent, result in zip(batch, client.process_sequence(calls, transport=transport), strict=True):
            out = result.outputs["image"]
            same = (
                out.frame_number == sent.frame_number
                and out.data_window == sent.data_window
                and list(out.channels) == list(sent.channels)
                and all(out.channels[n].dtype == p.dtype and out.channels[n].tobytes() == p.tobytes()
                        for n, p in sent.channels.items())
                and result.provenance["plateforge/sourcePixelsDigest"] == pixels_digest(sent)
            )
            if not same:
                problems.append(f"frame {sent.frame_number} via {transport} came back different")
print(json.dumps({"ok": count - len(problems), "problems": problems[:5]}))
"""


class _Prober:
    """ListModels every 0.1 s on a connection of its own, each with a 1 s deadline."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = inference_pb2_grpc.InferenceStub(channel)
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    stub.ListModels(inference_pb2.ListModelsRequest(), metadata=AUTH, timeout=1.0)
                    self.latencies.append(time.monotonic() - started)
                except grpc.RpcError as error:
                    self.failures.append(f"{error.code()}: {error.details()}")
                self.stop.wait(0.1)


def test_soak_idle_and_anonymous_streams_while_clients_work() -> None:
    proc = start_server(
        "--idle-timeout", "600", "--max-streams-per-peer", str(PER_PEER_CAP), "--max-streams", str(PER_PEER_CAP + 64)
    )
    pid = proc.process.pid
    held = OpenStreams(proc.address)
    prober = _Prober(proc.address)
    try:
        with Client(proc.address, token=TOKEN, retries=0) as warm:  # load what the first call needs
            warm.process(
                "passthrough", {"plate": Frame.from_array(np.zeros((8, 8, 4), np.float16))}, transport="stream"
            )
        idle_kib = memory_kib(pid, "VmRSS")
        prober.thread.start()
        for i in range(IDLE_STREAMS):
            held.idle_process_stream(header=i % 2 == 1)
        watches = [held.health_watch() for _ in range(WATCHES)]
        held_kib = memory_kib(pid, "VmRSS")

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
            out, err = child.communicate(timeout=180)
            assert child.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        seconds = time.monotonic() - started

        # The held streams are all still open: nothing cut them while the clients worked.
        still_open = sum(1 for c in held.calls if c.is_active())  # type: ignore[attr-defined]
        # A flood past the cap is refused, and what the cap allows is all it gets.
        time.sleep(0.3)  # the clients' last streams give their slots back
        accepted, refused = 0, 0
        for _ in range(40):
            try:
                held.health_watch()
                accepted += 1
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
                refused += 1
        prober.stop.set()
        prober.thread.join(5)
        peak_kib = memory_kib(pid, "VmHWM")
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        threads = int(next(line for line in status if line.startswith("Threads:")).split()[1])
        assert all(w.is_active() for w in watches)  # type: ignore[attr-defined]
    finally:
        prober.stop.set()
        held.close()
        proc.stop()

    figures = {
        "idle_streams": IDLE_STREAMS,
        "anonymous_watches": WATCHES,
        "clients": CLIENTS,
        "frames_per_client": FRAMES,
        "frames_ok": sum(r["ok"] for r in reports),
        "seconds": round(seconds, 1),
        "list_models_calls": len(prober.latencies),
        "list_models_max_ms": round(1000 * max(prober.latencies, default=0.0), 1),
        "list_models_failures": len(prober.failures),
        "streams_still_open": still_open,
        "flood_accepted": accepted,
        "flood_refused": refused,
        "server_threads": threads,
        "server_rss_idle_mib": round(idle_kib / 1024, 1),
        "server_rss_holding_streams_mib": round(held_kib / 1024, 1),
        "server_rss_peak_mib": round(peak_kib / 1024, 1),
    }
    out = REPO / "build" / "reliability" / "soak.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))

    assert figures["frames_ok"] == CLIENTS * FRAMES, [r["problems"] for r in reports]
    assert not prober.failures, prober.failures[:5]
    assert len(prober.latencies) >= 10 and max(prober.latencies) < 1.0, figures
    assert still_open == IDLE_STREAMS + WATCHES, figures
    assert refused > 0 and accepted <= PER_PEER_CAP - IDLE_STREAMS - WATCHES, figures
    assert (held_kib - idle_kib) / 1024 < MAX_HELD_GROWTH_MIB, figures
    assert (peak_kib - idle_kib) / 1024 < MAX_GROWTH_MIB, figures
