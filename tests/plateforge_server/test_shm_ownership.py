"""Shared-memory regions belong to the client that registered them, against a real server process.

Before, any token holder who knew a region's name (``ls /dev/shm``) could read it, overwrite it or
unregister it, a region file of another user was accepted, and a client that truncated its region
killed the server with SIGBUS. Now RegisterRegion answers a secret every use must present, the file
must be the server's own user's, and the server copies frames out with pread instead of mapping
the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from plateforge import codec
from plateforge.calls import ProcessCall
from plateforge.client import Client
from plateforge.frames import Frame
from plateforge.shm import HEADER_BYTES, Region
from plateforge.v1 import inference_pb2, inference_pb2_grpc, shm_pb2
from tests.conftest import TOKEN, ServerProcess, start_server
from tests.frames_for_tests import assert_same_frame

pytestmark = pytest.mark.timeout(120)

AUTH = (("authorization", f"Bearer {TOKEN}"),)


def _frame(seed: int, width: int = 32, height: int = 16) -> Frame:
    rng = np.random.default_rng(seed)
    return Frame.from_array(rng.random((height, width, 4), dtype=np.float32).astype(np.float16), frame_number=1001)


def _register(channel: grpc.Channel, region: Region, *, memfd: int | None = None) -> bytes:
    memfd = region.fd if memfd is None else memfd
    reply = channel.unary_unary(
        "/plateforge.v1.SharedMemory/RegisterRegion",
        request_serializer=shm_pb2.RegisterRegionRequest.SerializeToString,
        response_deserializer=shm_pb2.RegisterRegionResponse.FromString,
    )(
        shm_pb2.RegisterRegionRequest(
            name=region.name, byte_size=region.size, nonce=region.nonce, owner_pid=os.getpid(), memfd=memfd
        ),
        metadata=AUTH,
        timeout=10,
    )
    region.secret = reply.secret
    return bytes(reply.secret)


def _unregister(channel: grpc.Channel, name: str, secret: bytes) -> None:
    channel.unary_unary(
        "/plateforge.v1.SharedMemory/UnregisterRegion",
        request_serializer=shm_pb2.UnregisterRegionRequest.SerializeToString,
        response_deserializer=shm_pb2.UnregisterRegionResponse.FromString,
    )(shm_pb2.UnregisterRegionRequest(name=name, secret=secret), metadata=AUTH, timeout=10)


def _write(region: Region, frame: Frame, offset: int = HEADER_BYTES) -> None:
    for pixels in frame.channels.values():
        region.buffer[offset : offset + pixels.nbytes] = codec.little_endian(pixels).reshape(-1).view(np.uint8)
        offset += pixels.nbytes


def _reference(region: Region, frame: Frame, secret: bytes) -> inference_pb2.ProcessRequest:
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [frame]}), with_data=False)
    msg = request.inputs[0].frames[0]
    msg.shm_region, msg.shm_offset, msg.shm_secret = region.name, HEADER_BYTES, secret
    return request


@pytest.fixture(params=[pytest.param(True, id="memfd"), pytest.param(False, id="dev-shm")])
def victim(server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[tuple[Region, Frame]]:
    """A region another client registered, holding its frame; the test never sees the secret."""
    region = Region(1 << 20, memfd=request.param)
    frame = _frame(7)
    _write(region, frame)
    with grpc.insecure_channel(server.address) as channel:
        secret = _register(channel, region)
    yield region, frame
    region.secret = secret
    region.close()


@pytest.mark.parametrize("secret", [pytest.param(b"", id="no-secret"), pytest.param(b"\0" * 32, id="guessed")])
def test_a_region_cannot_be_read_without_its_secret(
    server: ServerProcess, victim: tuple[Region, Frame], secret: bytes
) -> None:
    region, frame = victim
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            # No output region: the answer would carry the victim's pixels as bytes.
            stub.Process(_reference(region, frame, secret), metadata=AUTH, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "secret" in (info.value.details() or "")


def test_a_region_cannot_be_written_without_its_secret(server: ServerProcess, victim: tuple[Region, Frame]) -> None:
    region, _ = victim
    before = region.buffer.copy()
    request = codec.encode_call(ProcessCall("passthrough", {"plate": [_frame(99)]}))
    request.output_region.region, request.output_region.offset = region.name, HEADER_BYTES
    request.output_region.byte_size = region.size - HEADER_BYTES
    with grpc.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Process(request, metadata=AUTH, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert np.array_equal(region.buffer, before), "another client wrote into the region"


def test_a_region_cannot_be_released_without_its_secret(server: ServerProcess, victim: tuple[Region, Frame]) -> None:
    region, frame = victim
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            _unregister(channel, region.name, b"")
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert region.path is None or region.path.exists(), "another client unlinked the region"
        # Its owner still uses it, and releases it with the secret.
        secret = region.secret
        reply = inference_pb2_grpc.InferenceStub(channel).Process(
            _reference(region, frame, secret), metadata=AUTH, timeout=10
        )
        assert_same_frame(codec.frame_from_proto(reply.outputs[0].frame), frame, attributes=False)
        _unregister(channel, region.name, secret)
    assert region.path is None or not region.path.exists()


def test_a_client_sees_only_its_own_regions(server: ServerProcess) -> None:
    """Two real Clients on one server: the second, knowing the first's region names, gets
    nothing out of them; the first carries on exactly."""
    mine, theirs = _frame(1), _frame(2)
    with (
        Client(server.address, token=TOKEN, retries=0) as owner,
        grpc.insecure_channel(server.address) as other,
    ):
        out = owner.process("passthrough", {"plate": mine}, transport="shm").outputs["image"]
        assert_same_frame(out, mine, attributes=False)
        stub = inference_pb2_grpc.InferenceStub(other)
        for name in owner._shm.regions:
            request = codec.encode_call(ProcessCall("passthrough", {"plate": [theirs]}), with_data=False)
            request.inputs[0].frames[0].shm_region = name
            request.inputs[0].frames[0].shm_offset = HEADER_BYTES
            with pytest.raises(grpc.RpcError) as info:
                stub.Process(request, metadata=AUTH, timeout=10)
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        again = owner.process("passthrough", {"plate": theirs}, transport="shm").outputs["image"]
        assert_same_frame(again, theirs, attributes=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another user needs root")
def test_a_region_of_another_user_is_refused(server: ServerProcess) -> None:
    region = Region(1 << 16, memfd=False)
    try:
        assert region.path is not None
        os.chown(region.path, 65534, 65534)
        with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
            _register(channel, region)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "belongs to uid 65534" in (info.value.details() or "")
    finally:
        region.close()


# -- truncation ----------------------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[ServerProcess]:
    """A server of this test's own: before, the truncation killed it."""
    proc = start_server()
    yield proc
    proc.stop()


def test_a_truncated_region_fails_the_call_not_the_server(own_server: ServerProcess) -> None:
    """A /dev/shm file can be shrunk by its owner at any time: the server copies frames out of it
    and writes into it, and a short read is an error for that call."""
    frame = _frame(3, 256, 128)
    region = Region(1 << 20, memfd=False)
    output = Region(1 << 20, memfd=False)
    assert region.path is not None and output.path is not None
    try:
        _write(region, frame)
        with grpc.insecure_channel(own_server.address) as channel:
            secret = _register(channel, region)
            out_secret = _register(channel, output)
            stub = inference_pb2_grpc.InferenceStub(channel)
            reply = stub.Process(_reference(region, frame, secret), metadata=AUTH, timeout=10)
            assert_same_frame(codec.frame_from_proto(reply.outputs[0].frame), frame, attributes=False)

            os.truncate(region.path, 4096)  # the frame's bytes run to 64 + 262144
            with pytest.raises(grpc.RpcError) as info:
                stub.Process(_reference(region, frame, secret), metadata=AUTH, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
            assert "truncated" in (info.value.details() or "")
            assert own_server.process.poll() is None, "the server died reading a truncated region"

            # An output region truncated after registering: the server writes, it never maps.
            os.truncate(output.path, 0)
            request = codec.encode_call(ProcessCall("cleanup-classical", {"plate": [frame], "mask": [_mask(frame)]}))
            request.output_region.region, request.output_region.offset = output.name, HEADER_BYTES
            request.output_region.byte_size = output.size - HEADER_BYTES
            request.output_region.secret = out_secret
            reply = stub.Process(request, metadata=AUTH, timeout=30)
            assert reply.outputs[0].frame.shm_region == output.name
            assert own_server.process.poll() is None, "the server died writing a truncated region"
        with Client(own_server.address, token=TOKEN, retries=0) as client:
            assert client.health()
            again = client.process("passthrough", {"plate": frame}, transport="shm").outputs["image"]
            assert_same_frame(again, frame, attributes=False)
    finally:
        region.close()
        output.close()


def _mask(frame: Frame) -> Frame:
    alpha = np.zeros((frame.height, frame.width), np.float16)
    alpha[4:12, 8:24] = 1
    return Frame(
        channels={"A": alpha},
        data_window=frame.data_window,
        display_window=frame.display_window,
        frame_number=frame.frame_number,
    )


def test_a_memfd_region_cannot_shrink_and_must_be_sealed_to_register(own_server: ServerProcess) -> None:
    """The mapped kind: sealed before it is registered, so no one (its creator included) can
    shrink it under the server's mapping; an unsealed memfd, or a descriptor that is not the
    named memfd, is refused."""
    frame = _frame(4, 256, 128)
    region = Region(1 << 20, memfd=True)
    loose = os.memfd_create("plateforge-loose", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with pytest.raises(PermissionError):
            os.ftruncate(region.fd, 4096)
        _write(region, frame)
        with grpc.insecure_channel(own_server.address) as channel:
            secret = _register(channel, region)
            stub = inference_pb2_grpc.InferenceStub(channel)
            reply = stub.Process(_reference(region, frame, secret), metadata=AUTH, timeout=10)
            assert_same_frame(codec.frame_from_proto(reply.outputs[0].frame), frame, attributes=False)

            os.ftruncate(loose, region.size)
            os.pwrite(loose, region.nonce, 0)
            impostor = Region(1 << 16, memfd=True)
            try:
                for fd, match in ((loose, "not its memfd"), (impostor.fd, "not its memfd")):
                    with pytest.raises(grpc.RpcError) as info:
                        _register(channel, region, memfd=fd)
                    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert match in (info.value.details() or ""), info.value.details()
            finally:
                impostor.close()
        assert own_server.process.poll() is None
    finally:
        os.close(loose)
        region.close()


def test_an_unsealed_memfd_is_refused(own_server: ServerProcess) -> None:
    name = f"plateforge-{os.getpid()}-unsealed"
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, 1 << 16)
        nonce = os.urandom(16)
        os.pwrite(fd, nonce, 0)
        with grpc.insecure_channel(own_server.address) as channel, pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(
                "/plateforge.v1.SharedMemory/RegisterRegion",
                request_serializer=shm_pb2.RegisterRegionRequest.SerializeToString,
                response_deserializer=shm_pb2.RegisterRegionResponse.FromString,
            )(
                shm_pb2.RegisterRegionRequest(
                    name=name, byte_size=1 << 16, nonce=nonce, owner_pid=os.getpid(), memfd=fd
                ),
                metadata=AUTH,
                timeout=10,
            )
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "sealed" in (info.value.details() or "")
    finally:
        os.close(fd)
