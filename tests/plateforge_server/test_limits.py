"""Waiting calls cost the server no thread, and what one caller may hold open is bounded: real
server processes on loopback with idle and anonymous streams open while a token holder's calls
must answer within a second; the idle deadline; the stream caps per peer and in all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plateforge import streams
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.jobs_client import TrainingClient
from plateforge.v1 import inference_pb2, inference_pb2_grpc, training_pb2, training_pb2_grpc
from plateforge_server.limits import StreamLimits, StreamSlots, peer_host
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.plateforge_server.test_server_process import _frame
from tests.plateforge_server.training.helpers import write_pairs

pytestmark = pytest.mark.timeout(180)

AUTH = (("authorization", f"Bearer {TOKEN}"),)
PROCESS_STREAM = "/plateforge.v1.Inference/ProcessStream"


class OpenStreams:
    """Streams held open against a server until :meth:`close`: each waits on an Event, so its
    client sends nothing more until the test lets go."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.release = threading.Event()
        self.calls: list[grpc.Future] = []

    def _requests(self, first: list[bytes]) -> Iterator[bytes]:
        yield from first
        self.release.wait()

    def idle_process_stream(self, *, header: bool = False, metadata: tuple[tuple[str, str], ...] = AUTH) -> object:
        """A ProcessStream that sends nothing (or only its header) and waits."""
        first = []
        if header:
            call = ProcessCall("passthrough", {"plate": [_frame(64, 48)]})
            first = [next(iter(streams.stream_call(call)))]
        stub = self.channel.stream_stream(PROCESS_STREAM)
        call_ = stub(self._requests(first), metadata=metadata, timeout=120)
        self.calls.append(call_)
        return call_

    def health_watch(self) -> Iterator[health_pb2.HealthCheckResponse]:
        """An anonymous health Watch, once the server has answered its first status."""
        replies = health_pb2_grpc.HealthStub(self.channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
        assert next(replies).status == health_pb2.HealthCheckResponse.SERVING
        self.calls.append(replies)
        return replies

    def watch_job(self, job_id: str) -> Iterator[training_pb2.JobEvent]:
        stub = training_pb2_grpc.TrainingStub(self.channel)
        events = stub.WatchJob(training_pb2.WatchJobRequest(id=job_id), metadata=AUTH, timeout=120)
        next(events)
        self.calls.append(events)
        return events

    def close(self) -> None:
        for call in self.calls:
            call.cancel()
        self.release.set()
        self.channel.close()


@contextmanager
def open_streams(address: str) -> Iterator[OpenStreams]:
    held = OpenStreams(address)
    try:
        yield held
    finally:
        held.close()


def answers_within(address: str, seconds: float) -> float:
    """ListModels from a fresh connection: the seconds it took (fails past ``seconds``)."""
    started = time.monotonic()
    with grpc.insecure_channel(address) as channel:
        reply = inference_pb2_grpc.InferenceStub(channel).ListModels(
            inference_pb2.ListModelsRequest(), metadata=AUTH, timeout=seconds
        )
    assert any(m.name == "passthrough" for m in reply.models)
    return time.monotonic() - started


# -- waiting calls hold no thread ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_server() -> Iterator[ServerProcess]:
    """A server with the defaults: 4 workers, stream caps well above what these tests open."""
    proc = start_server()
    yield proc
    proc.stop()


def test_idle_and_anonymous_streams_do_not_starve_a_token_holder(default_server: ServerProcess) -> None:
    answers_within(default_server.address, 10.0)  # warm: the first call may load what it needs
    with open_streams(default_server.address) as held:
        for _ in range(16):
            held.health_watch()
        for i in range(16):
            held.idle_process_stream(header=i % 2 == 1)
        time.sleep(0.5)  # let every stream reach its handler
        for _ in range(3):
            assert answers_within(default_server.address, 1.0) < 1.0
        # and a frame still goes through, on a compute thread nobody idle holds
        with Client(default_server.address, token=TOKEN, retries=0, timeout=10) as client:
            out = client.process("passthrough", {"plate": _frame(32, 16)}, transport="stream")
        assert out.outputs["image"].channels["R"].tobytes() == _frame(32, 16).channels["R"].tobytes()


def test_job_watchers_do_not_block_cancel_job(default_server: ServerProcess, tmp_path: Path) -> None:
    dataset = write_pairs(tmp_path / "pairs", frames=2, size=32)
    config = {"steps": 100000, "batch": 1, "crop": 16, "warmup": 1, "checkpoint_every": 1000, "validation_size": 32}
    with Client(default_server.address, token=TOKEN, retries=0, timeout=30) as client:
        job = TrainingClient(client).start_training(dataset=str(dataset), tool="look", config=config)
    with open_streams(default_server.address) as held:
        for _ in range(8):
            held.watch_job(job.id)
        for _ in range(8):
            held.health_watch()
        assert answers_within(default_server.address, 1.0) < 1.0
        started = time.monotonic()
        with grpc.insecure_channel(default_server.address) as channel:
            cancelled = training_pb2_grpc.TrainingStub(channel).CancelJob(
                training_pb2.CancelJobRequest(id=job.id), metadata=AUTH, timeout=1.0
            )
        assert time.monotonic() - started < 1.0
        assert cancelled.id == job.id


# -- the idle deadline -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[ServerProcess]:
    proc = start_server("--idle-timeout", "1")
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "header", [pytest.param(False, id="sends-nothing"), pytest.param(True, id="stalls-after-header")]
)
def test_a_stream_that_sends_nothing_is_ended(impatient_server: ServerProcess, header: bool) -> None:
    with open_streams(impatient_server.address) as held:
        started = time.monotonic()
        call = held.idle_process_stream(header=header)
        with pytest.raises(grpc.RpcError) as info:
            list(call)  # type: ignore[call-overload]
        elapsed = time.monotonic() - started
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "--idle-timeout" in (info.value.details() or ""), info.value.details()
    assert 0.9 < elapsed < 10.0  # the server's 1 s, not the client's 120 s


def test_the_idle_deadline_spares_watchers_and_working_streams(impatient_server: ServerProcess) -> None:
    with open_streams(impatient_server.address) as held:
        watch = held.health_watch()
        # a frame whose chunks keep coming, each within the deadline, is not cut off
        frame = _frame(512, 256)
        call = ProcessCall("passthrough", {"plate": [frame]})
        paced = _paced(streams.stream_call(call, chunk_bytes=64 * 1024), 0.3)
        replies = held.channel.stream_stream(PROCESS_STREAM)(paced, metadata=AUTH, timeout=60)
        result = streams.gather_result(iter(replies))
        assert result.outputs["image"].channels["Z"].tobytes() == frame.channels["Z"].tobytes()
        time.sleep(1.5)
        assert watch.is_active()  # type: ignore[attr-defined]


def _paced(messages: Iterator[bytes], seconds: float) -> Iterator[bytes]:
    for i, message in enumerate(messages):
        if i < 8:
            time.sleep(seconds)  # a slow sender: over the deadline in all, never between two messages
        yield message


# -- stream caps ---------------------------------------------------------------------------------------


def _refused(opening: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call = opening()
        if hasattr(call, "__iter__"):
            list(call)  # type: ignore[call-overload]  # a refused stream ends at once
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
    return info.value


@pytest.mark.parametrize(
    ("args", "watch_named", "stream_named"),
    [
        pytest.param(
            ("--max-streams-per-peer", "4", "--max-streams", "100"),
            "--max-streams-per-peer 4",
            "--max-streams-per-peer 4",
            id="per-peer",
        ),
        pytest.param(
            ("--max-streams", "2", "--max-anonymous-streams", "2", "--max-streams-per-peer", "100"),
            "--max-anonymous-streams 2",
            "--max-streams 2",
            id="in-all",
        ),
    ],
)
def test_streams_past_the_cap_are_refused_and_slots_come_back(
    args: tuple[str, ...], watch_named: str, stream_named: str
) -> None:
    proc = start_server(*args)
    try:
        with open_streams(proc.address) as held:
            idle = [held.idle_process_stream() for _ in range(2)]
            held.health_watch()
            held.health_watch()
            assert watch_named in (_refused(held.health_watch).details() or "")
            assert stream_named in (_refused(held.idle_process_stream).details() or "")
            assert answers_within(proc.address, 1.0) < 1.0  # unary calls are not streams
            idle[0].cancel()  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5
            while True:  # the cancelled stream's slot is given back
                again = held.idle_process_stream()
                time.sleep(0.3)
                if again.is_active():  # type: ignore[attr-defined]
                    break
                assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "a cancelled stream's slot never came back"
    finally:
        proc.stop()


def test_callers_without_the_token_cannot_take_a_token_holders_slots() -> None:
    proc = start_server("--max-anonymous-streams", "3", "--max-streams", "3", "--max-streams-per-peer", "100")
    try:
        with open_streams(proc.address) as anonymous, open_streams(proc.address) as holder:
            for _ in range(3):
                anonymous.health_watch()
            assert "--max-anonymous-streams 3" in (_refused(anonymous.health_watch).details() or "")
            calls = [holder.idle_process_stream() for _ in range(3)]
            time.sleep(0.5)
            assert all(c.is_active() for c in calls)  # type: ignore[attr-defined]
            assert "--max-streams 3" in (_refused(holder.idle_process_stream).details() or "")
    finally:
        proc.stop()


def test_one_address_at_its_cap_leaves_others_their_streams() -> None:
    """Two loopback addresses are two peers: one flooding its share leaves the other its own."""
    proc = start_server("--host", "localhost", "--max-streams-per-peer", "2", "--max-streams", "100")
    port = proc.address.rsplit(":", 1)[1]
    try:
        with open_streams(f"127.0.0.1:{port}") as ipv4, open_streams(f"[::1]:{port}") as ipv6:
            ipv4.health_watch()
            ipv4.idle_process_stream()
            with pytest.raises(grpc.RpcError) as refused:
                ipv4.health_watch()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "127.0.0.1 has 2 streams open" in (refused.value.details() or ""), refused.value.details()
            ipv6.health_watch()
            ipv6.health_watch()
            with pytest.raises(grpc.RpcError) as refused_too:
                ipv6.health_watch()
            assert "::1 has 2 streams open" in (refused_too.value.details() or ""), refused_too.value.details()
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        pytest.param("ipv4:10.0.0.5:41234", "10.0.0.5", id="ipv4"),
        pytest.param("ipv6:[::1]:41234", "::1", id="ipv6"),
        pytest.param("ipv6:%5B::1%5D:41234", "::1", id="ipv6-as-grpc-writes-it"),
        pytest.param("ipv6:%5B2001:db8::7%5D:443", "2001:db8::7", id="ipv6-global"),
        pytest.param("ipv6:[fe80::1%eth0]:5", "fe80::1%eth0", id="ipv6-scoped"),
        pytest.param("unix:/tmp/plateforge.sock", "unix", id="unix"),
        pytest.param("", "", id="unknown"),
    ],
)
def test_a_peer_is_its_address_not_its_port(peer: str, host: str) -> None:
    assert peer_host(peer) == host


def test_slots_are_counted_per_peer_and_in_all() -> None:
    slots = StreamSlots(StreamLimits(max_streams=3, max_streams_per_peer=2, max_anonymous_streams=1))
    assert slots.take("a") is None and slots.take("a") is None
    assert "per address" in (slots.take("a") or "")
    assert slots.take("b") is None
    assert "--max-streams 3" in (slots.take("c") or "")
    slots.give_back("a")
    assert slots.take("c") is None and slots.open == 3
    assert slots.take("d", anonymous=True) is None  # anonymous streams have slots of their own
    assert "--max-anonymous-streams 1" in (slots.take("e", anonymous=True) or "")
    slots.give_back("d", anonymous=True)
    assert slots.take("e", anonymous=True) is None and slots.open == 4


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"idle_timeout": 0}, id="no-idle-time"),
        pytest.param({"max_streams": 0}, id="no-streams"),
        pytest.param({"max_streams_per_peer": -1}, id="negative-per-peer"),
        pytest.param({"max_anonymous_streams": 0}, id="no-anonymous-streams"),
    ],
)
def test_limits_refuse_nonsense(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        StreamLimits(**limits)  # type: ignore[arg-type]
