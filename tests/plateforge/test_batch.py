"""plateforge.batch against real servers: resumable runs keyed on provenance, failures that do not
stop the other frames, cancellation, and failover across two servers when one is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from plateforge.batch import SequenceJob, run_batch, run_sequence
from plateforge.client import Client, split_addresses
from plateforge.errors import CancelledError, ExrError, UsageError
from plateforge.exr import read_exr, sha256_file, write_exr
from plateforge.provenance import from_attributes
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import ServerProcess, start_server
from tests.tls import self_signed

FRAMES = list(range(1001, 1007))


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch-shot")
    write_shot(make_shot(width=96, height=64, frames=len(FRAMES), seed=5), folder)
    return folder


@pytest.fixture
def plates(shot: Path, tmp_path: Path) -> Path:
    """A private copy of the shot, free to change."""
    folder = tmp_path / "shot"
    shutil.copytree(shot, folder)
    return folder


def cleanup_job(plates: Path, out: Path, **changes: object) -> SequenceJob:
    job = SequenceJob(
        model="cleanup-classical",
        inputs={"plate": str(plates / "plate.####.exr"), "mask": str(plates / "mask.####.exr")},
        frames=list(FRAMES),
        outputs={"": str(out / "clean.####.exr")},
        params={"inpaint_radius": 3},
        skip_existing=True,
    )
    for key, value in changes.items():
        setattr(job, key, value)
    if job.model == "passthrough":
        job.inputs.pop("mask", None)
    return job


def stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(out.glob("*.exr"))}


def test_a_rerun_skips_exactly_the_frames_whose_provenance_matches(
    client: Client, plates: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_batch(client, cleanup_job(plates, out))
    assert first.status == "done" and first.processed == FRAMES and not first.skipped
    record = from_attributes(read_exr(out / "clean.1003.exr").attributes)
    inputs = json.loads(record["inputsSha256"])
    assert set(inputs) == {"plate", "mask"}
    assert inputs["plate"] == {str(f): sha256_file(plates / f"plate.{f}.exr") for f in range(1001, 1006)}
    before = stamps(out)

    again = run_batch(client, cleanup_job(plates, out))
    assert again.status == "done" and again.skipped == FRAMES and again.processed == []
    assert stamps(out) == before  # nothing rewritten

    # Another parameter value: every frame was made otherwise, so every frame is redone.
    changed = run_batch(client, cleanup_job(plates, out, params={"inpaint_radius": 5}))
    assert changed.redone == FRAMES and changed.processed == FRAMES
    assert json.loads(from_attributes(read_exr(out / "clean.1001.exr").attributes)["params"])["inpaint_radius"] == 5

    # The default spelled out is the same job as the default left out.
    spelled = run_batch(client, cleanup_job(plates, out, params={"inpaint_radius": 5, "temporal_radius": 2}))
    assert spelled.skipped == FRAMES

    # A changed plate: the frames that read it (itself and its neighbours within the model's
    # temporal radius, 2) are redone; the others are skipped.
    frame = read_exr(plates / "plate.1002.exr")
    brighter = {c: (p * 2 if c in "RGB" else p) for c, p in frame.channels.items()}
    write_exr(plates / "plate.1002.exr", frame.replace(channels=brighter))
    touched = run_batch(client, cleanup_job(plates, out, params={"inpaint_radius": 5}))
    assert touched.redone == [1001, 1002, 1003, 1004] and touched.skipped == [1005, 1006]

    # A missing output is made; one made by another model is redone.
    (out / "clean.1005.exr").unlink()
    other = run_batch(client, cleanup_job(plates, out, model="passthrough", params={}, frames=[1006]))
    assert other.redone == [1006]
    mixed = run_batch(client, cleanup_job(plates, out, params={"inpaint_radius": 5}))
    assert mixed.processed == [1005, 1006] and mixed.redone == [1006] and mixed.skipped == [1001, 1002, 1003, 1004]
    assert from_attributes(read_exr(out / "clean.1006.exr").attributes)["model"] == "cleanup-classical"


def test_without_skip_existing_every_frame_is_written_again(client: Client, plates: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = cleanup_job(plates, out, model="passthrough", params={}, frames=[1001, 1002])
    run_batch(client, job)
    job.skip_existing = False
    report = run_batch(client, job)
    assert report.processed == [1001, 1002] and report.skipped == [] and report.redone == []


def test_a_damaged_input_fails_its_frame_and_the_others_go_on(
    client: Client, plates: Path, tmp_path: Path, testdata: Path
) -> None:
    shutil.copyfile(testdata / "Damaged" / "NULL_pointer", plates / "plate.1003.exr")
    out = tmp_path / "out"
    job = cleanup_job(plates, out, model="passthrough", params={}, keep_going=True)
    report = run_batch(client, job)
    assert report.status == "partial"
    assert report.processed == [1001, 1002, 1004, 1005, 1006]
    assert [f.frame for f in report.failed] == [1003]
    assert isinstance(report.failed[0].error, ExrError) and "plate.1003.exr" in str(report.failed[0].error)
    summary = report.to_json()
    assert summary["status"] == "partial" and summary["failed"][0]["error"] == "ExrError"
    assert sorted(p.name for p in out.iterdir()) == [f"clean.{f}.exr" for f in (1001, 1002, 1004, 1005, 1006)]

    # Without keep_going the first failure stops the run; frames after it are not reached.
    stop_out = tmp_path / "stop"
    stopped = run_batch(client, cleanup_job(plates, stop_out, model="passthrough", params={}))
    assert stopped.status == "failed" and stopped.stopped
    assert stopped.processed == [1001, 1002] and stopped.not_reached == [1004, 1005, 1006]
    assert sorted(p.name for p in stop_out.iterdir()) == ["clean.1001.exr", "clean.1002.exr"]
    with pytest.raises(ExrError, match=r"plate\.1003\.exr"):
        run_sequence(client, cleanup_job(plates, stop_out, model="passthrough", params={}))

    # Repaired, the resumed run makes only what is missing.
    shutil.copyfile(plates / "plate.1002.exr", plates / "plate.1003.exr")
    resumed = run_batch(client, job)
    assert resumed.status == "done" and resumed.processed == [1003] and len(resumed.skipped) == 5


def test_cancel_stops_after_the_frame_in_hand(client: Client, plates: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int, frame: int) -> None:
        seen.append(frame)
        cancel.set()

    with pytest.raises(CancelledError, match="cancelled after 1 of 6 frames"):
        run_sequence(client, cleanup_job(plates, out), progress=progress, cancel=cancel)
    assert seen == [1001]
    assert [p.name for p in out.iterdir()] == ["clean.1001.exr"]  # complete, and nothing partial
    read_exr(out / "clean.1001.exr")
    assert run_batch(client, cleanup_job(plates, out), cancel=cancel).status == "cancelled"


def test_bad_jobs_are_refused_before_any_frame(client: Client, plates: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="takes no input 'matte'"):
        run_batch(client, cleanup_job(plates, tmp_path, inputs={"matte": str(plates / "mask.####.exr")}))
    with pytest.raises(UsageError, match="no frame token"):
        run_batch(client, cleanup_job(plates, tmp_path, outputs={"": str(tmp_path / "one.exr")}))
    assert not list(tmp_path.glob("*.exr"))


def test_several_addresses_make_one_balanced_channel() -> None:
    assert split_addresses("a:1, b:2,a:1") == ["a:1", "b:2"]
    assert split_addresses(["a:1,b:2", "c:3"]) == ["a:1", "b:2", "c:3"]
    with Client(["127.0.0.1:1", "localhost:2"]) as client:
        assert client.addresses == ["127.0.0.1:1", "localhost:2"]
    with pytest.raises(UsageError, match="HOST:PORT"):
        Client("127.0.0.1:1,nohost")


@pytest.mark.slow
def test_a_server_killed_mid_run_loses_no_frame(tmp_path: Path) -> None:
    shot = tmp_path / "shot"
    write_shot(make_shot(width=96, height=64, frames=16, seed=9), shot)
    frames = list(range(1001, 1017))
    first, second = start_server(), start_server()

    def served(server: ServerProcess) -> int:
        return sum("cleanup-classical frame" in line for line in server.stderr_lines)

    try:
        out = tmp_path / "out"
        finished: list[int] = []
        killed_after: list[int] = []

        def progress(done: int, total: int, frame: int) -> None:
            finished.append(frame)
            # Kill the first server once both have answered (the calls are spread), with frames
            # still in flight and to come.
            if not killed_after and served(first) and served(second):
                first.stop(signal.SIGKILL)
                killed_after.append(done)

        # retries=0: the client's own retries are off, so gRPC's retry policy alone fails over.
        with Client(f"{first.address},{second.address}", token=first.token, timeout=60.0, retries=0) as client:
            client.wait_ready()
            job = cleanup_job(shot, out, skip_existing=False, frames=frames)
            report = run_batch(client, job, progress=progress)
        assert first.process.poll() == -signal.SIGKILL
        assert killed_after and killed_after[0] <= len(frames) - 4, killed_after
        assert report.status == "done", report.to_json()
        # Every frame produced exactly once, each a complete output with the right provenance.
        assert finished == frames and report.processed == frames
        assert [p.name for p in report.written] == [f"clean.{f}.exr" for f in frames]
        for number in frames:
            frame = read_exr(out / f"clean.{number}.exr")
            plate = read_exr(shot / f"plate.{number}.exr")
            assert list(frame.channels) == list(plate.channels)
            assert np.array_equal(frame.channels["Z"], plate.channels["Z"])
            assert from_attributes(frame.attributes)["frame"] == str(number)
        assert served(second) >= len(frames) - served(first)  # the survivor made the rest
    finally:
        for server in (first, second):
            if server.process.poll() is None:
                server.stop()
    assert not [p for p in os.listdir(out) if not p.endswith(".exr")]


def test_several_servers_over_tls(tmp_path: Path) -> None:
    """The balanced target names IPs; the certificate is checked against the first address's host."""
    cert, key = self_signed(tmp_path)
    servers = [start_server("--tls-cert", str(cert), "--tls-key", str(key)) for _ in range(2)]
    try:
        addresses = [s.address for s in servers]
        with Client(addresses, token=servers[0].token, root_certificates=cert.read_bytes(), retries=0) as client:
            client.wait_ready()
            assert {m.name for m in client.list_models()} >= {"passthrough", "cleanup-classical"}
    finally:
        for server in servers:
            server.stop()


def test_a_dns_name_is_balanced_over_its_records(server: ServerProcess) -> None:
    port = server.address.rpartition(":")[2]
    with Client(f"dns:///localhost:{port}", token=server.token, retries=0) as client:
        client.wait_ready()
        assert "passthrough" in {m.name for m in client.list_models()}
