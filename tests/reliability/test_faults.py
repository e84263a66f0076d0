"""Faults, with real processes killed for real: the server mid-sequence, a client mid-stream and
mid-shared-memory, and a disk that fills while outputs are written. Nothing may be lost, doubled
or left half-written, and the server must give back what a dead client held.

A training job killed mid-run and resumed is covered where training lives, and not repeated here:
tests/plateforge_server/training/test_checkpoints.py::test_killed_run_resumes_from_last_checkpoint (a
SIGKILLed training process resumes from its last checkpoint, exactly) and
tests/plateforge_server/jobs/test_jobs.py::test_restart_recovery_marks_interrupted_and_resumes (a server
restart marks the job INTERRUPTED and resumes it).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.exr import read_exr, sha256_file, write_exr
from plateforge.frames import Frame
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame
from tests.reliability.helpers import mapped_files, memory_kib, open_files, wait_until

pytestmark = pytest.mark.timeout(150)


def _write_inputs(folder: Path, frames: range, *, width: int, height: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for number in frames:
        pixels = rng.random((height, width, 4), dtype=np.float32).astype(np.float16)
        write_exr(folder / f"in.{number:04d}.exr", Frame.from_array(pixels, frame_number=number))


# -- the server killed mid-sequence --------------------------------------------------------------------

SEQUENCE = r"""
import sys
from plateforge.batch import SequenceJob, run_sequence
from plateforge.client import Client

address, token, folder, first, last = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
job = SequenceJob(model="passthrough", inputs={"plate": f"{folder}/in.####.exr"},
                  frames=list(range(first, last + 1)), outputs={"": f"{folder}/out/out.####.exr"})
# Retries long enough to outlast a server restart (backoff doubles from 0.2 s: ~25 s in all).
with Client(address, token=token, retries=7, backoff=0.2, timeout=60) as client:
    written = run_sequence(client, job)
print(len(written))
"""


def test_server_killed_mid_sequence_the_client_carries_on_after_restart(tmp_path: Path) -> None:
    frames = range(1001, 1061)
    _write_inputs(tmp_path, frames, width=320, height=240)
    (tmp_path / "out").mkdir()
    first = start_server()
    port = first.address.rsplit(":", 1)[1]
    restarted: list[ServerProcess] = []
    child = subprocess.Popen(
        [sys.executable, "-c", SEQUENCE, first.address, TOKEN, str(tmp_path), str(frames[0]), str(frames[-1])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(list((tmp_path / "out").iterdir())) >= 8, timeout=60), "no progress"
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        done_before_restart = len(list((tmp_path / "out").glob("out.*.exr")))
        restarted.append(start_server("--port", port))
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
        for proc in restarted:
            proc.stop()
    assert child.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert done_before_restart < len(frames), "the sequence finished before the server was killed"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    # One complete output per frame: nothing doubled, no partial or temporary file left behind.
    assert written == [f"out.{n:04d}.exr" for n in frames]
    for number in frames:
        out_frame = read_exr(tmp_path / "out" / f"out.{number:04d}.exr")
        assert_same_frame(out_frame, read_exr(tmp_path / f"in.{number:04d}.exr"), attributes=False)
        assert out_frame.attributes["plateforge/model"] == "passthrough"


# -- a client killed mid-stream -------------------------------------------------------------------------------

STREAMER = r"""
import sys, time
import grpc, numpy as np
from plateforge import streams
from plateforge.calls import ProcessCall
from plateforge.frames import Frame

address, token = sys.argv[1], sys.argv[2]
frame = Frame.from_array(np.ones((2160, 4096, 4), np.float32), frame_number=1)
messages = list(streams.stream_call(ProcessCall("passthrough", {"plate": [frame]})))

def requests():
    for k, message in enumerate(messages):
        if k == len(messages) * 3 // 4:
            print("SENT", flush=True)
            time.sleep(600)  # never finishes: killed here
        yield message

channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
call = channel.stream_stream("/plateforge.v1.Inference/ProcessStream", None, None)
list(call(requests(), metadata=(("authorization", "Bearer " + token),), timeout=600))
"""

SHM_CLIENT = r"""
import sys, time
import numpy as np
from plateforge.client import Client
from plateforge.frames import Frame

address, token = sys.argv[1], sys.argv[2]
client = Client(address, token=token)
frame = Frame.from_array(np.ones((540, 960, 4), np.float16), frame_number=1)
client.process("passthrough", {"plate": frame}, transport="shm")
print("REGIONS", *client._shm.regions, flush=True)
time.sleep(600)  # never closes: killed here
"""


def _spawn_until(script: str, server: ServerProcess, marker: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", script, server.address, TOKEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith(marker):
        child.kill()
        raise AssertionError(f"the client never got going: {line!r} {child.stderr.read() if child.stderr else ''}")
    return child, line


def test_client_killed_mid_stream_gives_its_memory_back() -> None:
    server = start_server()
    pid = server.process.pid
    try:
        with Client(server.address, token=TOKEN) as warm:  # the first call's one-off allocations
            warm.process("passthrough", {"plate": Frame.from_array(np.ones((64, 64, 4), np.float32))})
        idle = memory_kib(pid)
        child, _ = _spawn_until(STREAMER, server, "SENT")
        # 3/4 of a 141.6 MB frame has arrived and sits in the server's buffers.
        assert wait_until(lambda: memory_kib(pid) - idle > 80 * 1024, timeout=30), (idle, memory_kib(pid))
        holding = memory_kib(pid)
        child.kill()
        child.wait(timeout=10)
        released = wait_until(lambda: memory_kib(pid) - idle < 40 * 1024, timeout=15)
        assert released, f"server RSS idle {idle} KiB, holding {holding} KiB, after the kill {memory_kib(pid)} KiB"
        with Client(server.address, token=TOKEN, retries=0) as client:
            assert client.list_models()
    finally:
        assert server.stop() == 0


def test_client_killed_while_holding_shared_memory_leaves_nothing_behind(server: ServerProcess) -> None:
    child, line = _spawn_until(SHM_CLIENT, server, "REGIONS")
    names = line.split()[1:]
    assert names
    pid = server.process.pid
    # The client's regions are sealed memfds: the server holds each open and maps it.
    assert all(any(n in m for m in open_files(pid, "plateforge-")) for n in names)
    assert all(any(n in m for m in mapped_files(pid, "plateforge-")) for n in names)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    # The server watches the owner: its regions are unmapped and closed within a poll or two,
    # and (for /dev/shm files) unlinked, so nothing of them remains.

    def held() -> set[str]:
        files = open_files(pid, "plateforge-") | mapped_files(pid, "plateforge-")
        return {m for m in files if any(n in m for n in names)}

    assert wait_until(lambda: not held(), timeout=10), held()
    assert not any((Path("/dev/shm") / n).exists() for n in names)


# -- a full disk ---------------------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "plateforge.cli.main"]


def _limit_file_size(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes (a full disk, as seen by write()),
    and going past it is an error (EFBIG), not the SIGXFSZ that would kill the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_while_writing_outputs_keeps_the_previous_ones(server: ServerProcess, tmp_path: Path) -> None:
    frames = range(1001, 1004)
    _write_inputs(tmp_path, frames, width=256, height=256)
    command = [*CLI, "process", "--server", server.address, "--token", TOKEN, "--model", "passthrough"]
    command += ["--input", str(tmp_path / "in.####.exr"), "--output", str(tmp_path / "out.####.exr")]
    first = subprocess.run([*command, "--frames", "1001"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    previous = sha256_file(tmp_path / "out.1001.exr")
    before = sorted(os.listdir(tmp_path))

    full = subprocess.run(
        [*command, "--frames", "1001-1003"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _limit_file_size(64 * 1024),
    )
    assert full.returncode == 2, full.stdout + full.stderr
    message = [line for line in full.stderr.splitlines() if line.strip() and not line.startswith("\r")]
    assert "Traceback" not in full.stderr
    assert any("out.1001.exr" in line and "too large" in line.lower() for line in message), full.stderr
    # The previous output is whole and unchanged; nothing partial or temporary was left.
    assert sha256_file(tmp_path / "out.1001.exr") == previous
    assert sorted(os.listdir(tmp_path)) == before
    assert_same_frame(read_exr(tmp_path / "out.1001.exr"), read_exr(tmp_path / "in.1001.exr"), attributes=False)


def test_no_room_for_shared_memory_falls_back_to_bytes(server: ServerProcess) -> None:
    """A client that cannot reserve a region (here: a file-size limit; in production a full
    /dev/shm) gets its frame through gRPC bytes instead, and says why shared memory is off."""
    script = r"""
import sys
import numpy as np
from plateforge.client import Client
from plateforge.frames import Frame
frame = Frame.from_array(np.random.default_rng(1).random((512, 512, 4), dtype=np.float32), frame_number=1)
with Client(sys.argv[1], token=sys.argv[2], retries=0) as client:
    out = client.process("passthrough", {"plate": frame}).outputs["image"]
    assert all(np.array_equal(out.channels[n], p) for n, p in frame.channels.items())
    print(client._shm.unavailable)
import os
print("PID", os.getpid())
"""
    done = subprocess.run(
        [sys.executable, "-c", script, server.address, TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: _limit_file_size(256 * 1024),
    )
    assert done.returncode == 0, done.stderr
    assert "cannot create a shared-memory region" in done.stdout
    pid = done.stdout.split("PID")[-1].strip()
    assert not list(Path("/dev/shm").glob(f"plateforge-{pid}-*")), "a region that could not be made must not remain"
