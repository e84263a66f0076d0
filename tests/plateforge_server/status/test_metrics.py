"""/metrics on a real server process: Prometheus text that prometheus_client parses, whose
counters move by exactly the requests made (counts, bytes each way, latency observations)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from plateforge import codec, streams
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.frames import Frame
from plateforge.jobs_client import TrainingClient
from tests.conftest import TOKEN
from tests.plateforge_server.status.helpers import StatusServer, get, start_status_server
from tests.plateforge_server.training.helpers import write_pairs

#: Long enough to be running when scraped; cancelled by the test.
LONG = {"steps": 5000, "batch": 1, "crop": 16, "warmup": 1, "validation_size": 32, "checkpoint_every": 5000}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def status() -> Iterator[StatusServer]:
    started = start_status_server()
    yield started
    assert started.server.stop() == 0


def scrape(status: StatusServer) -> Samples:
    code, headers, body = get(status.url + "metrics", token=TOKEN)
    assert code == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def call(model: str = "passthrough", width: int = 40, height: int = 24) -> ProcessCall:
    rng = np.random.default_rng(width * height)
    frame = Frame.from_array(rng.random((height, width, 3), dtype=np.float32), names=("R", "G", "B"))
    return ProcessCall(model=model, inputs={"plate": [frame]})


def unary(channel: grpc.Channel, request: bytes) -> bytes:
    method = channel.unary_unary("/plateforge.v1.Inference/Process", None, None)
    reply: bytes = method(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=60)
    return reply


def streamed(channel: grpc.Channel, messages: list[bytes]) -> list[bytes]:
    method = channel.stream_stream("/plateforge.v1.Inference/ProcessStream", None, None)
    return list(method(iter(messages), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=60))


def test_counters_move_by_exactly_the_requests_made(status: StatusServer) -> None:
    before = scrape(status)
    unary_in = unary_out = stream_in = stream_out = 0
    with grpc.insecure_channel(status.server.address) as channel:
        for width in (40, 56, 72):
            request = codec.encode_call(call(width=width)).SerializeToString()
            reply = unary(channel, request)
            unary_in, unary_out = unary_in + len(request), unary_out + len(reply)
        for width in (32, 48):
            messages = list(streams.stream_call(call(width=width), chunk_bytes=2048))
            replies = streamed(channel, messages)
            stream_in += sum(map(len, messages))
            stream_out += sum(map(len, replies))
        # Refused: an unknown model's name makes no label of its own (a caller could mint any number).
        missing = codec.encode_call(call(model="no-such-model-4821")).SerializeToString()
        with pytest.raises(grpc.RpcError) as refused:
            unary(channel, missing)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    after = scrape(status)

    assert moved(before, after, "plateforge_requests_total", model="passthrough", status="OK") == 5
    assert moved(before, after, "plateforge_requests_total", model="(unknown)", status="NOT_FOUND") == 1
    assert not any("no-such-model" in str(labels) for _, labels in after)
    assert moved(before, after, "plateforge_frame_seconds_count", transport="unary") == 4
    assert moved(before, after, "plateforge_frame_seconds_count", transport="stream") == 2
    assert moved(before, after, "plateforge_frame_seconds_bucket", transport="stream", le="+Inf") == 2
    assert moved(before, after, "plateforge_received_bytes_total", transport="unary") == unary_in + len(missing)
    assert moved(before, after, "plateforge_sent_bytes_total", transport="unary") == unary_out
    assert moved(before, after, "plateforge_received_bytes_total", transport="stream") == stream_in
    assert moved(before, after, "plateforge_sent_bytes_total", transport="stream") == stream_out
    assert value(after, "plateforge_active_streams") == 0
    assert value(after, "plateforge_job_queue_length") == 0
    assert value(after, "plateforge_jobs", state="RUNNING") == 0
    # Scraping is no frame request: two scrapes in a row count nothing.
    again = scrape(status)
    assert moved(after, again, "plateforge_requests_total", model="passthrough", status="OK") == 0


def test_recent_requests_are_listed_with_their_timings(status: StatusServer) -> None:
    with grpc.insecure_channel(status.server.address) as channel:
        request = codec.encode_call(call(width=20, height=10)).SerializeToString()
        reply = unary(channel, request)
    code, _, body = get(status.url + "api/status", token=TOKEN)
    assert code == 200
    newest = json.loads(body)["requests"][0]
    assert newest["model"] == "passthrough" and newest["status"] == "OK" and newest["transport"] == "unary"
    assert newest["bytes_in"] == len(request) and newest["bytes_out"] == len(reply)
    assert 0 < newest["seconds"] < 60


def test_job_states_queue_and_training_pace(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    status = start_status_server(
        "--jobs-dir", str(tmp_path / "jobs"), "--models-dir", str(tmp_path / "models"), "--threads", "1"
    )
    try:
        with Client(status.server.address, token=TOKEN, timeout=60) as client:
            training = TrainingClient(client)
            first = training.start_training(dataset=str(manifest), tool="look", params=LONG, model_name="a")
            second = training.start_training(dataset=str(manifest), tool="look", params=LONG, model_name="b")
            for event in training.watch(first.id):
                if event.job.step >= 5:
                    break
            time.sleep(0.5)  # a few more steps: a pace to measure
            running = scrape(status)
            assert value(running, "plateforge_jobs", state="RUNNING") == 1
            assert value(running, "plateforge_jobs", state="QUEUED") == 1
            assert value(running, "plateforge_job_queue_length") == 1
            pace = value(running, "plateforge_training_steps_per_second", job=first.id, tool="look")
            assert 0 < pace < 10_000
            listed = json.loads(get(status.url + "api/status", token=TOKEN)[2])
            assert listed["queue_length"] == 1
            assert {j["id"]: j["state"] for j in listed["jobs"]} == {first.id: "RUNNING", second.id: "QUEUED"}
            assert next(j["steps_per_second"] for j in listed["jobs"] if j["id"] == first.id) > 0

            training.cancel(second.id)
            training.cancel(first.id)
            for _ in training.watch(first.id):
                pass
            ended = scrape(status)
            assert value(ended, "plateforge_jobs", state="CANCELLED") == 2
            assert value(ended, "plateforge_job_queue_length") == 0
            assert not any(name == "plateforge_training_steps_per_second" for name, _ in ended)
    finally:
        assert status.server.stop() == 0
