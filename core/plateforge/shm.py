"""Same-host shared memory: the client's side (protocol: proto/plateforge/v1/shm.proto).

When the server runs on this machine, frames need not cross a socket. The client keeps a few
regions (memfds sealed against resizing, or where there are none files in ``/dev/shm`` of mode
0600; a random nonce in their first bytes),
registers them with the server, copies a call's input frames into one, and sends ``Process`` a
request whose frames are references (region, offset). The server reads them in place and writes
its outputs into a second region, or points at the input's own bytes when an output is an input
unchanged. The client hands the outputs back as read-only arrays that view the region in place:
one copy of the pixels per round trip on this side, one on the server's where a tool makes a new
image. A region that a result views is leased to it: it returns to the pool only once the last
array viewing it is gone, so a result never changes under its holder. An output lying in a
region much larger than itself (a tool that passes one of many inputs through) is copied out
instead, so a held result never pins more shared memory than about twice its own size.

Registering a region answers a secret that binds it to this client: every reference to the
region (a frame's ``shm_secret``, the output region's ``secret``, UnregisterRegion) carries it,
so another caller who learns a region's name can neither read, overwrite nor release it. The
server copies frames out of the file rather than mapping it, so nothing done to the file can
stop the server.

Negotiation is automatic: ``transport="auto"`` tries shared memory only for a single server on a
loopback address, on a system with ``/dev/shm``; registration then proves both ends see the same
file (the server must find the nonce). Anything that fails there (another machine behind a
tunnel, another user, a server without the service, no room in /dev/shm) turns shared memory off
for this client, which then sends bytes as before. A server that restarted has forgotten the
regions: the client registers them again once and repeats the call.

Regions belong to the client's process: ``close()`` unlinks them, and if the process dies the
server notices (it watches the process) and unlinks them itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import mmap
import os
import secrets
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import numpy as np

from plateforge import codec
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.errors import FrameError, SharedMemoryError
from plateforge.frames import Frame
from plateforge.v1 import frame_pb2, inference_pb2, shm_pb2, shm_pb2_grpc

__all__ = ["HEADER_BYTES", "SHM_DIR", "Region", "SharedMemoryClient", "same_host_possible"]

SHM_DIR = Path("/dev/shm")
#: Bytes at the start of a region kept for the nonce (the server checks it); frames follow.
HEADER_BYTES = 64
NONCE_BYTES = 16
#: Frames start on 64-byte boundaries (cache lines; numpy's SIMD loops like them).
ALIGN = 64
#: Regions are sized in steps of this, so frames of nearly the same size share one.
SIZE_STEP = 1 << 20
#: Idle regions a client keeps; beyond that the smallest are released.
MAX_IDLE_REGIONS = 4

# Status codes that mean "shared memory cannot work with this server": stop trying, send bytes.
_NOT_SHAREABLE = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED)

log = logging.getLogger("plateforge.client")


def _aligned(offset: int) -> int:
    return (offset + ALIGN - 1) // ALIGN * ALIGN


def same_host_possible(addresses: Sequence[str], *, directory: Path = SHM_DIR) -> bool:
    """Whether shared memory is worth trying: Linux with ``directory``, one server on loopback."""
    if not sys.platform.startswith("linux") or len(addresses) != 1 or not directory.is_dir():
        return False
    host = addresses[0].rpartition(":")[0].strip("[]") if ":" in addresses[0] else addresses[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def memfd_possible() -> bool:
    """Whether this system makes sealable memfds (Linux): the zero-copy kind of region."""
    return hasattr(os, "memfd_create") and hasattr(os, "MFD_ALLOW_SEALING")


class Region:
    """Shared memory mapped into this process, its first bytes holding a nonce: a sealed memfd
    (``memfd=True``, the default where the system has them and ``directory`` is /dev/shm) or a
    file in ``directory``.

    A memfd is sealed against shrinking and growing before anyone else sees it, so the server can
    map it and read frames in place; a /dev/shm file it must copy out (its owner could shrink it
    under a mapping). The memfd stays open here as ``fd``: the server opens it through
    ``/proc/<pid>/fd/<fd>`` when it registers it, and again after a restart.
    """

    def __init__(self, size: int, *, directory: Path = SHM_DIR, memfd: bool | None = None) -> None:
        self.name = f"plateforge-{os.getpid()}-{secrets.token_hex(8)}"
        self.size = size
        if memfd is None:
            memfd = memfd_possible() and directory == SHM_DIR
        #: The /dev/shm file (unlinked on close), or None for a memfd.
        self.path: Path | None = None if memfd else directory / self.name
        #: The memfd's descriptor in this process (0: a /dev/shm file).
        self.fd = 0
        if self.path is None:
            import fcntl  # Linux only, as memfds are

            fd = os.memfd_create(self.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            # Reserve the pages now: a full /dev/shm then fails here with ENOSPC instead of
            # killing the process with SIGBUS when a write first touches a missing page.
            os.posix_fallocate(fd, 0, size)
            if self.path is None:
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self.mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            raise
        if self.path is None:
            self.fd = fd
        else:
            os.close(fd)
        self.nonce = secrets.token_bytes(NONCE_BYTES)
        self.mapping[:NONCE_BYTES] = self.nonce
        self.buffer: np.ndarray = np.frombuffer(self.mapping, dtype=np.uint8)
        self.registered = False
        #: What RegisterRegion answered: every use of the region presents it.
        self.secret = b""

    def close(self) -> None:
        """Unlink the file (or close the memfd) and unmap it (once no array views it any more)."""
        _release(self.path, self.mapping)
        if self.fd:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = 0
        self.buffer = np.empty(0, np.uint8)


def _release(path: Path | None, mapping: mmap.mmap) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    # BufferError: a caller still views it; the mapping goes when that array does.
    with contextlib.suppress(BufferError):
        mapping.close()


class SharedMemoryClient:
    """A Client's shared-memory transport: negotiation, a pool of registered regions, and the
    encoding of calls into them. Thread-safe (process_sequence runs calls on several threads)."""

    def __init__(
        self,
        channel: grpc.Channel,
        metadata: tuple[tuple[str, str], ...],
        addresses: Sequence[str],
        *,
        directory: Path = SHM_DIR,
    ) -> None:
        self._metadata = metadata
        self._directory = directory
        stub = shm_pb2_grpc.SharedMemoryStub(channel)  # type: ignore[no-untyped-call]
        self._register = stub.RegisterRegion
        self._unregister = stub.UnregisterRegion
        #: Why shared memory is off for this client; None: not known to be off.
        self.unavailable: str | None = None
        if not same_host_possible(addresses, directory=directory):
            self.unavailable = "the server is not on a loopback address of this machine, or there is no /dev/shm"
        # Reentrant: a lease's finalizer gives its region back from wherever the last array
        # viewing it dies, which can be a garbage collection inside one of these locked blocks.
        self._lock = threading.RLock()
        self._idle: list[Region] = []
        self._all: dict[str, Region] = {}
        # Regions are files: unlink them even if the Client is dropped without close().
        self._finalizer = weakref.finalize(self, _release_all, self._all)

    @property
    def regions(self) -> list[str]:
        """Names of the regions this client holds (in use or idle)."""
        with self._lock:
            return sorted(self._all)

    def close(self) -> None:
        with self._lock:
            regions = list(self._all.values())
            self._all.clear()
            self._idle.clear()
        for region in regions:
            self._forget(region, timeout=2)

    # -- the pool ---------------------------------------------------------------------------------

    def _acquire(self, size: int) -> Region:
        with self._lock:
            fitting = [r for r in self._idle if r.size >= size]
            if fitting:
                region = min(fitting, key=lambda r: r.size)
                self._idle.remove(region)
                return region
        try:
            region = Region(-(-size // SIZE_STEP) * SIZE_STEP, directory=self._directory)
        except OSError as error:
            self.unavailable = f"cannot create a shared-memory region of {size} bytes: {error.strerror}"
            raise SharedMemoryError(self.unavailable) from None
        with self._lock:
            self._all[region.name] = region
        return region

    def _give_back(self, region: Region) -> None:
        with self._lock:
            if region.name not in self._all:
                return
            self._idle.append(region)
            extra = sorted(self._idle, key=lambda r: r.size)[: max(0, len(self._idle) - MAX_IDLE_REGIONS)]
            for old in extra:
                self._idle.remove(old)
                del self._all[old.name]
        for old in extra:
            self._forget(old)

    def _forget(self, region: Region, *, timeout: float = 5.0) -> None:
        if region.registered:
            # A failure means the server is gone, and it released the region as it stopped.
            with contextlib.suppress(grpc.RpcError):
                request = shm_pb2.UnregisterRegionRequest(name=region.name, secret=region.secret)
                self._unregister(request, timeout=timeout, metadata=self._metadata)
        region.close()

    def _ensure_registered(self, region: Region, timeout: float) -> None:
        if region.registered:
            return
        request = shm_pb2.RegisterRegionRequest(
            name=region.name, byte_size=region.size, nonce=region.nonce, owner_pid=os.getpid(), memfd=region.fd
        )
        try:
            reply = self._register(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code in _NOT_SHAREABLE:
                details = error.details() if isinstance(error, grpc.Call) else str(error)
                self.unavailable = f"the server cannot share memory with this client: {details}"
                raise SharedMemoryError(self.unavailable) from None
            raise
        region.secret = reply.secret
        region.registered = True

    def forget_registrations(self) -> None:
        """The server lost its regions (it restarted): register each again before its next use."""
        with self._lock:
            for region in self._all.values():
                region.registered = False

    # -- calls ------------------------------------------------------------------------------------

    def process(
        self,
        call: ProcessCall,
        send: Callable[[inference_pb2.ProcessRequest], inference_pb2.ProcessResponse],
        retrying: Callable[[Callable[[], inference_pb2.ProcessResponse]], inference_pb2.ProcessResponse],
        *,
        timeout: float,
    ) -> ProcessResult:
        """``call`` through shared memory: ``send`` is the Process RPC, ``retrying`` the client's
        retry rule (it turns failures into PlateforgeError). Raises SharedMemoryError when shared
        memory cannot carry the call; the caller then sends bytes."""
        if self.unavailable is not None:
            raise SharedMemoryError(self.unavailable)
        request = codec.encode_call(call, with_data=False)
        frames = [
            (msg, f)
            for given, fs in zip(request.inputs, call.inputs.values(), strict=True)
            for msg, f in zip(given.frames, fs, strict=True)
        ]
        sizes = [f.nbytes for _, f in frames]
        # Outputs are at most about as large as the largest input frame for every model served
        # today; any that do not fit come back as bytes in the response.
        output_bytes = max(sizes, default=0)
        inputs = self._acquire(HEADER_BYTES + sum(_aligned(n) for n in sizes))
        leases = [self._lease(inputs)]
        try:
            outputs = self._acquire(HEADER_BYTES + output_bytes)
            leases.append(self._lease(outputs))
            offset = HEADER_BYTES
            for msg, frame in frames:
                msg.shm_region, msg.shm_offset = inputs.name, offset
                for pixels in frame.channels.values():
                    size = pixels.nbytes
                    inputs.buffer[offset : offset + size] = codec.little_endian(pixels).reshape(-1).view(np.uint8)
                    offset += size
                offset = _aligned(offset)
            request.output_region.region = outputs.name
            request.output_region.offset = HEADER_BYTES
            request.output_region.byte_size = outputs.size - HEADER_BYTES

            def attempt() -> inference_pb2.ProcessResponse:
                self._ensure_registered(inputs, timeout)
                self._ensure_registered(outputs, timeout)
                # Set on every attempt: registering again answers a new secret.
                for msg, _ in frames:
                    msg.shm_secret = inputs.secret
                request.output_region.secret = outputs.secret
                return send(request)

            try:
                reply = retrying(attempt)
            except SharedMemoryError:
                if self.unavailable is not None:
                    raise
                # The server no longer knows the regions (it restarted): register again, once.
                self.forget_registrations()
                reply = retrying(attempt)
            return self._decode(reply, {lease.name: lease for lease in leases})
        finally:
            # A region goes back to the pool now, or when the last output array viewing it goes.
            for lease in leases:
                lease.close()

    def _lease(self, region: Region) -> _Lease:
        return _Lease(region, self._give_back)

    def _decode(self, reply: inference_pb2.ProcessResponse, leases: dict[str, _Lease]) -> ProcessResult:
        frames = {(k, 0): self._frame_out(out.frame, leases, out.name) for k, out in enumerate(reply.outputs)}
        return codec.result_from(reply, frames)

    def _frame_out(self, msg: frame_pb2.Frame, leases: dict[str, _Lease], name: str) -> Frame:
        if not msg.shm_region:
            return codec.frame_from_proto(msg)
        lease = leases.get(msg.shm_region)
        if lease is None:
            raise FrameError(f"output {name!r} points at shared-memory region {msg.shm_region!r}, not this call's")
        layouts = [codec.channel_layout(msg, channel) for channel in msg.channels]
        frame_bytes = sum(size for _, _, size in layouts)
        # Viewed in place unless that would pin a region far larger than the output.
        pin = lease.region.size <= 2 * (HEADER_BYTES + frame_bytes) + SIZE_STEP
        offset = msg.shm_offset
        arrays = []
        for channel, (dtype, shape, size) in zip(msg.channels, layouts, strict=True):
            if offset < HEADER_BYTES or offset + size > lease.region.size or channel.byte_size != size:
                raise FrameError(
                    f"output {name!r} channel {channel.name!r}: bytes {offset}..{offset + size} do not fit "
                    f"region {lease.name!r} of {lease.region.size} bytes"
                )
            array = lease.view(offset, size).view(dtype).reshape(shape)
            if pin:
                array.flags.writeable = False
            else:
                array = array.copy()
            arrays.append(array)
            offset += size
        return codec.frame_from_arrays(msg, arrays)


class _Lease:
    """One call's hold on a region: the region returns to the pool (``give_back``) once the call
    is over and no output array views it any more.

    The arrays handed out are views of one ndarray made for this lease from the region's mapping;
    numpy makes every view's ``base`` that ndarray, so it lives exactly as long as the last of
    them, and a finalizer on it gives the region back.
    """

    def __init__(self, region: Region, give_back: Callable[[Region], None]) -> None:
        self.region = region
        self.name = region.name
        self._array: np.ndarray | None = np.frombuffer(region.mapping, dtype=np.uint8)
        # Not at exit: by then the client and its channel are closed, and the file is unlinked.
        weakref.finalize(self._array, give_back, region).atexit = False

    def view(self, offset: int, size: int) -> np.ndarray:
        assert self._array is not None, "a closed lease gives no views"
        return self._array[offset : offset + size]

    def close(self) -> None:
        """The call is over: from now on only its output arrays keep the region."""
        self._array = None


def _release_all(regions: dict[str, Region]) -> None:
    for region in list(regions.values()):
        region.close()
    regions.clear()
