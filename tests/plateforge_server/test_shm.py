"""Same-host shared memory against a real server process: negotiated by "auto", exact, in place,
and every bad registration or reference refused with a clear error."""

from __future__ import annotations

import gc
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from plateforge import codec
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.errors import FrameError, SharedMemoryError
from plateforge.frames import Frame
from plateforge.provenance import pixels_digest
from plateforge.shm import HEADER_BYTES, Region, SharedMemoryClient
from plateforge.shots.synthetic import make_shot
from plateforge.v1 import inference_pb2, inference_pb2_grpc, shm_pb2
from tests.conftest import TOKEN, ServerProcess
from tests.frames_for_tests import assert_same_frame, mixed_frame

AUTH = (("authorization", f"Bearer {TOKEN}"),)


def _frame(width: int = 96, height: int = 64, number: int = 1001) -> Frame:
    rng = np.random.default_rng(width + height)
    return Frame.from_array(rng.random((height, width, 4), dtype=np.float32).astype(np.float16), frame_number=number)


def _own_regions() -> set[str]:
    """This process's regions: its files in /dev/shm and the memfds it holds open."""
    prefix = f"plateforge-{os.getpid()}-"
    found = {n for n in os.listdir("/dev/shm") if n.startswith(prefix)}
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(f"/memfd:{prefix}"):
            found.add(link.removeprefix("/memfd:").removesuffix(" (deleted)"))
    return found


@pytest.fixture
def region_file() -> Iterator[Region]:
    """A region that is a file in /dev/shm (what clients without memfds register)."""
    made = Region(1 << 20, memfd=False)
    yield made
    made.close()


@pytest.fixture(params=[pytest.param(True, id="memfd"), pytest.param(False, id="dev-shm")])
def region(request: pytest.FixtureRequest) -> Iterator[Region]:
    """A region of either kind: a sealed memfd (mapped by the server) or a /dev/shm file (copied)."""
    made = Region(1 << 20, memfd=request.param)
    yield made
    made.close()


def _register(channel: grpc.Channel, region: Region, **change: object) -> bytes:
    """Register ``region``; the secret the server answered (kept on the region too)."""
    stub = channel.unary_unary(
        "/plateforge.v1.SharedMemory/RegisterRegion",
        request_serializer=shm_pb2.RegisterRegionRequest.SerializeToString,
        response_deserializer=shm_pb2.RegisterRegionResponse.FromString,
    )
    fields: dict[str, object] = {
        "name": region.name,
        "byte_size": region.size,
        "nonce": region.nonce,
        "owner_pid": os.getpid(),
        "memfd": region.fd,
        **change,
    }
    reply = stub(shm_pb2.RegisterRegionRequest(**fields), metadata=AUTH, timeout=10)  # type: ignore[arg-type]
    assert len(reply.secret) == 32
    region.secret = reply.secret
    return bytes(reply.secret)


def test_auto_uses_shared_memory_on_loopback_and_is_exact(server: ServerProcess) -> None:
    frame = mixed_frame()
    with Client(server.address, token=server.token, retries=0) as client:
        result = client.process("passthrough", {"plate": frame})
        assert client._shm.unavailable is None
        held = client._shm.regions
        assert held and set(held) <= _own_regions()
        assert_same_frame(result.outputs["image"], frame, attributes=False)
        assert result.provenance["plateforge/sourcePixelsDigest"] == pixels_digest(frame)
        # The result views its region, which no later call may reuse while the result lives.
        before = {k: v.copy() for k, v in result.outputs["image"].channels.items()}
        client.process("passthrough", {"plate": _frame()})
        for name, pixels in before.items():
            assert np.array_equal(result.outputs["image"].channels[name].view(np.uint8), pixels.view(np.uint8))
        held = client._shm.regions
        descriptors = {r.fd for r in client._shm._all.values() if r.fd}
        assert descriptors, "on Linux the regions are sealed memfds"
    # A result still views one region's pages (below): its /dev/shm file is unlinked, its memfd
    # descriptor closed, and the pages go with the result's last array.
    assert not set(held) & {n for n in os.listdir("/dev/shm")}, "close() must unlink the client's files"
    assert not any(_names_region(fd, held) for fd in descriptors), "close() must close the client's memfds"
    # Closing the client does not pull the pages from under a result still held.
    assert_same_frame(result.outputs["image"], frame, attributes=False)
    del result
    gc.collect()
    assert not set(held) & _own_regions(), "the last array gone, nothing of the client's regions remains"


def _names_region(fd: int, names: list[str]) -> bool:
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return any(link.startswith(f"/memfd:{name}") for name in names)


def _idle(client: Client) -> set[str]:
    return {region.name for region in client._shm._idle}


def test_a_result_leases_its_region_until_its_last_array_goes(server: ServerProcess) -> None:
    """Outputs come back as read-only views of the shared memory (no copy out); the region they
    view leaves the pool until the last of them is dropped, then serves the next call."""
    kept = _frame(number=1)
    with Client(server.address, token=server.token, retries=0) as client:
        result = client.process("passthrough", {"plate": kept}, transport="shm")
        red = result.outputs["image"].channels["R"]
        assert not red.flags.writeable and not red.flags.owndata
        with pytest.raises(ValueError, match="read-only"):
            red[0, 0] = 0
        leased = set(client._shm.regions) - _idle(client)
        assert len(leased) == 1, "passthrough answers in the input region: that one is leased"
        for k in range(6):
            other = _frame(number=10 + k)
            out = client.process("passthrough", {"plate": other}, transport="shm").outputs["image"]
            assert_same_frame(out, other, attributes=False)
            assert not leased & _idle(client)
        del out
        assert_same_frame(result.outputs["image"], kept, attributes=False)
        assert len(client._shm.regions) <= 6, "regions of finished calls are reused, not piled up"
        del result
        assert not leased & _idle(client), "one of its arrays still views the region"
        del red
        assert leased <= _idle(client), "the last array gone, the region is back in the pool"


def test_new_images_come_back_from_the_output_region_in_place(client: Client) -> None:
    shot = make_shot(width=64, height=48, frames=3, seed=3)
    call = dict(inputs={"plate": shot.plates, "mask": shot.masks}, target_frame=shot.first_frame + 1)
    shared = client.process("cleanup-classical", transport="shm", **call)  # type: ignore[arg-type]
    streamed = client.process("cleanup-classical", transport="stream", **call)  # type: ignore[arg-type]
    assert_same_frame(shared.outputs["image"], streamed.outputs["image"])
    assert all(not a.flags.owndata and not a.flags.writeable for a in shared.outputs["image"].channels.values())


def test_temporal_model_gives_the_same_result_over_shm_and_stream(client: Client) -> None:
    shot = make_shot(width=64, height=48, frames=3, seed=2)
    inputs = {"plate": shot.plates, "mask": shot.masks}
    call = dict(inputs=inputs, target_frame=shot.first_frame + 1)
    shared = client.process("cleanup-classical", transport="shm", **call)  # type: ignore[arg-type]
    streamed = client.process("cleanup-classical", transport="stream", **call)  # type: ignore[arg-type]
    assert_same_frame(shared.outputs["image"], streamed.outputs["image"])
    assert shared.provenance == streamed.provenance


def test_large_frame_through_shm_is_exact(client: Client) -> None:
    frame = Frame.from_array(np.random.default_rng(5).random((1080, 1920, 4), dtype=np.float32), frame_number=9)
    out = client.process("passthrough", {"plate": frame}, transport="shm").outputs["image"]
    assert_same_frame(out, frame, attributes=False)


def test_non_finite_is_refused_through_shm(client: Client) -> None:
    frame = _frame(number=1042)
    bad = frame.channels["G"].copy()
    bad[1, 2] = np.nan
    frame = frame.replace(channels={**frame.channels, "G": bad})
    with pytest.raises(FrameError, match=r"frame 1042 channel 'G' holds 1 NaN"):
        client.process("passthrough", {"plate": frame}, transport="shm")
    out = client.process("passthrough", {"plate": frame}, transport="shm", sanitize_non_finite=True)
    assert np.isfinite(out.outputs["image"].channels["G"]).all()


def test_a_server_that_cannot_see_the_region_means_bytes(server: ServerProcess, tmp_path: Path) -> None:
    """A region the server cannot open (here: not in /dev/shm) turns shared memory off; "auto"
    then sends bytes and "shm" says why."""
    frame = _frame()
    with Client(server.address, token=server.token, retries=0) as client:
        client._shm = SharedMemoryClient(client.channel, client.metadata, client.addresses, directory=tmp_path)
        with pytest.raises(SharedMemoryError, match="cannot open shared-memory region"):
            client.process("passthrough", {"plate": frame}, transport="shm")
        assert client._shm.unavailable is not None
        assert_same_frame(client.process("passthrough", {"plate": frame}).outputs["image"], frame, attributes=False)


@pytest.mark.parametrize(
    ("addresses", "possible"),
    [
        pytest.param(["127.0.0.1:50061"], True, id="ipv4-loopback"),
        pytest.param(["localhost:50061"], True, id="localhost"),
        pytest.param(["[::1]:50061"], True, id="ipv6-loopback"),
        pytest.param(["10.1.2.3:50061"], False, id="remote"),
        pytest.param(["render07:50061"], False, id="hostname"),
        pytest.param(["127.0.0.1:1", "127.0.0.1:2"], False, id="several-servers"),
    ],
)
def test_shared_memory_is_only_tried_for_one_loopback_server(addresses: list[str], possible: bool) -> None:
    from plateforge.shm import same_host_possible

    assert same_host_possible(addresses) is possible


@pytest.mark.parametrize(
    ("change", "code", "match"),
    [
        pytest.param({"name": "../../etc/passwd"}, grpc.StatusCode.INVALID_ARGUMENT, "not 'plateforge-'", id="path"),
        pytest.param({"name": "plateforge-x/../y"}, grpc.StatusCode.INVALID_ARGUMENT, "not 'plateforge-'", id="slash"),
        pytest.param({"name": "plateforge-missing"}, grpc.StatusCode.FAILED_PRECONDITION, "cannot open", id="missing"),
        pytest.param({"nonce": b"0" * 16}, grpc.StatusCode.FAILED_PRECONDITION, "nonce", id="wrong-nonce"),
        pytest.param({"nonce": b"short"}, grpc.StatusCode.INVALID_ARGUMENT, "16 bytes", id="short-nonce"),
        pytest.param({"byte_size": 1 << 30}, grpc.StatusCode.INVALID_ARGUMENT, "holds", id="larger-than-file"),
        pytest.param({"byte_size": 8}, grpc.StatusCode.INVALID_ARGUMENT, "header", id="too-small"),
        pytest.param({"owner_pid": 0}, grpc.StatusCode.INVALID_ARGUMENT, "process id", id="no-pid"),
        pytest.param({"owner_pid": 2**22 + 12345}, grpc.StatusCode.FAILED_PRECONDITION, "does not run", id="dead-pid"),
    ],
)
def test_bad_registrations_are_refused(
    server: ServerProcess, region_file: Region, change: dict[str, object], code: grpc.StatusCode, match: str
) -> None:
    region = region_file
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        _register(channel, region, **change)
    assert info.value.code() == code
    assert match in (info.value.details() or "")
    assert region.path.exists(), "a refused registration must leave the client's file alone"


def _request(region: Region, frame: Frame, offset: int) -> inference_pb2.ProcessRequest:
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}), with_data=False)
    msg = request.inputs[0].frames[0]
    msg.shm_region, msg.shm_offset, msg.shm_secret = region.name, offset, region.secret
    return request


@pytest.mark.parametrize(
    ("offset", "match"),
    [
        pytest.param(0, "outside shared-memory region", id="over-the-nonce"),
        pytest.param((1 << 20) - 100, "outside shared-memory region", id="past-the-end"),
        pytest.param(2**63, "outside shared-memory region", id="huge"),
    ],
)
def test_references_outside_the_region_are_refused(
    server: ServerProcess, region: Region, offset: int, match: str
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        _register(channel, region)
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Process(_request(region, _frame(8, 8), offset), metadata=AUTH, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert match in (info.value.details() or "")


def test_unknown_region_and_stream_references_are_refused(server: ServerProcess) -> None:
    fake = shm_pb2.RegisterRegionRequest(name=f"plateforge-never-{secrets.token_hex(4)}")
    frame = _frame(8, 8)
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}), with_data=False)
    request.inputs[0].frames[0].shm_region = fake.name
    request.inputs[0].frames[0].shm_offset = HEADER_BYTES
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Process(request, metadata=AUTH, timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "register it again" in (info.value.details() or "")
        header = inference_pb2.ProcessStreamRequest(header=request)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ProcessStream(iter([header]), metadata=AUTH, timeout=10))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "go through Process" in (info.value.details() or "")


@pytest.mark.parametrize("room", [pytest.param(1 << 16, id="fits"), pytest.param(16, id="too-small")])
def test_outputs_are_written_into_the_output_region_or_sent(server: ServerProcess, region: Region, room: int) -> None:
    """Inputs as bytes, outputs into shared memory: written at the offset asked when they fit,
    sent as bytes when they do not."""
    frame = _frame(16, 8)
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}))
    request.output_region.region = region.name
    request.output_region.offset = 4096
    request.output_region.byte_size = room
    with grpc.insecure_channel(server.address) as channel:
        request.output_region.secret = _register(channel, region)
        reply = inference_pb2_grpc.InferenceStub(channel).Process(request, metadata=AUTH, timeout=10)
    out = reply.outputs[0].frame
    if room == 16:
        assert out.shm_region == "" and all(c.data for c in out.channels)
        assert_same_frame(codec.frame_from_proto(out), frame, attributes=False)
        return
    assert (out.shm_region, out.shm_offset) == (region.name, 4096)
    assert not any(c.data for c in out.channels)
    offset = 4096
    for name, pixels in frame.channels.items():
        written = region.buffer[offset : offset + pixels.nbytes]
        assert np.array_equal(written, pixels.reshape(-1).view(np.uint8)), name
        offset += pixels.nbytes


def test_registering_again_keeps_the_region_usable_and_unregistering_unlinks_it(
    server: ServerProcess, region: Region
) -> None:
    frame = _frame(16, 8)
    offset = HEADER_BYTES
    for pixels in frame.channels.values():
        region.buffer[offset : offset + pixels.nbytes] = pixels.reshape(-1).view(np.uint8)
        offset += pixels.nbytes
    with grpc.insecure_channel(server.address) as channel:
        first = _register(channel, region)
        _register(channel, region)  # a client that thought the server had lost it
        assert region.secret != first, "registering again answers a new secret"
        stub = inference_pb2_grpc.InferenceStub(channel)
        stale = _request(region, frame, HEADER_BYTES)
        stale.inputs[0].frames[0].shm_secret = first
        with pytest.raises(grpc.RpcError) as refused:
            stub.Process(stale, metadata=AUTH, timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        request = _request(region, frame, HEADER_BYTES)
        request.output_region.region, request.output_region.offset = region.name, 4096
        request.output_region.byte_size = region.size - 4096
        request.output_region.secret = region.secret
        reply = stub.Process(request, metadata=AUTH, timeout=10)
        out = reply.outputs[0].frame
        assert (out.shm_region, out.shm_offset) == (region.name, HEADER_BYTES)  # passthrough: the input, in place
        channel.unary_unary(
            "/plateforge.v1.SharedMemory/UnregisterRegion",
            request_serializer=shm_pb2.UnregisterRegionRequest.SerializeToString,
            response_deserializer=shm_pb2.UnregisterRegionResponse.FromString,
        )(shm_pb2.UnregisterRegionRequest(name=region.name, secret=region.secret), metadata=AUTH, timeout=10)
        if region.path is not None:
            assert not region.path.exists(), "UnregisterRegion unlinks the file"
        else:
            mapped = Path(f"/proc/{server.process.pid}/maps").read_text()
            assert region.name not in mapped, "UnregisterRegion unmaps the memfd"
        with pytest.raises(grpc.RpcError) as info:
            stub.Process(_request(region, frame, HEADER_BYTES), metadata=AUTH, timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
