"""The server's side of same-host shared memory (protocol: proto/plateforge/v1/shm.proto).

A client on this machine creates ``/dev/shm/plateforge-…``, writes a nonce at its start and
registers it; the server maps it once and from then on reads request frames in place (numpy
arrays over the mapping, no copy) and writes outputs into the part of the region the request
names, or answers with a reference to the input's own bytes when an output *is* that input
(passthrough, untouched channels). The nonce proves both ends see the same file, so a client
behind a tunnel or in another machine's container is refused and falls back to bytes.

A region belongs to the process that registered it: the server watches that process through a
pidfd and, when it ends, unmaps the region and unlinks its file, so a client that crashed leaves
nothing in /dev/shm. Stopping the server releases every region.
"""

from __future__ import annotations

import hmac
import logging
import mmap
import os
import re
import select
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from plateforge import codec
from plateforge.calls import ProcessCall, ProcessResult
from plateforge.codec import call_from, channel_layout, frame_from_arrays, little_endian
from plateforge.errors import FrameError, FrameTooLargeError, SharedMemoryError
from plateforge.frames import Frame, has_non_finite
from plateforge.provenance import pixels_digest
from plateforge.v1 import frame_pb2, inference_pb2, shm_pb2

__all__ = [
    "HEADER_BYTES",
    "SHM_DIR",
    "SHM_SERVICE_NAME",
    "RegionTable",
    "SharedMemoryService",
    "add_shm_service",
    "uses_shm",
]

SHM_SERVICE_NAME = shm_pb2.DESCRIPTOR.services_by_name["SharedMemory"].full_name
SHM_DIR = Path("/dev/shm")
#: Bytes at the start of every region kept for the nonce; frames start at or after this.
HEADER_BYTES = 64
NONCE_BYTES = 16
#: Regions one process may hold at once: a client keeps a few (one per call in flight).
MAX_REGIONS_PER_PROCESS = 64
_NAME = re.compile(r"^plateforge-[A-Za-z0-9_-]{1,100}$")

log = logging.getLogger("plateforge.server")


@dataclass
class _Region:
    name: str
    path: Path
    size: int
    owner_pid: int
    mapping: mmap.mmap
    buffer: np.ndarray  # uint8 view of the whole mapping


@dataclass
class _Owner:
    pid: int
    pidfd: int | None
    regions: set[str] = field(default_factory=set)


class RegionTable:
    """Every mapped region, by name, and a thread that releases a process's regions when it ends."""

    def __init__(self, *, directory: Path = SHM_DIR, poll_seconds: float = 0.5) -> None:
        self.directory = directory
        self._regions: dict[str, _Region] = {}
        self._owners: dict[int, _Owner] = {}
        # Mappings still viewed by an array in flight: closed once nothing views them.
        self._closing: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_seconds = poll_seconds
        self._reaper = threading.Thread(target=self._reap, name="plateforge-shm-reaper", daemon=True)
        self._reaper.start()

    # -- registration -------------------------------------------------------------------------

    def register(self, name: str, size: int, nonce: bytes, owner_pid: int) -> _Region:
        if not _NAME.match(name):
            raise FrameError(f"shared-memory region name {name!r} is not 'plateforge-' then letters, digits, - or _")
        if size < HEADER_BYTES:
            raise FrameError(f"shared-memory region {name!r}: byte_size {size} is below the {HEADER_BYTES}-byte header")
        if len(nonce) != NONCE_BYTES:
            raise FrameError(f"shared-memory region {name!r}: the nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")
        if owner_pid <= 0:
            raise FrameError(f"shared-memory region {name!r}: owner_pid must be a process id, got {owner_pid}")
        path = self.directory / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            raise SharedMemoryError(
                f"cannot open shared-memory region {name!r} ({error.strerror}): the client is not on this "
                "machine or not allowed to share memory with the server; send bytes instead"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SharedMemoryError(f"shared-memory region {name!r} is not a regular file")
            if info.st_size < size:
                raise FrameError(
                    f"shared-memory region {name!r} holds {info.st_size} bytes; it was registered as {size}"
                )
            mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        if not hmac.compare_digest(mapping[:NONCE_BYTES], nonce):
            mapping.close()
            raise SharedMemoryError(
                f"shared-memory region {name!r} does not hold the client's nonce: client and server do not "
                "share this file (another machine or container); send bytes instead"
            )
        try:
            pidfd = _open_pidfd(owner_pid)
        except SharedMemoryError:
            mapping.close()
            raise
        with self._lock:
            old = self._regions.pop(name, None)
            if old is not None:  # registered again (the client thought we had lost it)
                self._drop(old, unlink=False)
            owner = self._owners.get(owner_pid)
            held = len(owner.regions) if owner is not None else 0
            if held >= MAX_REGIONS_PER_PROCESS:
                mapping.close()
                if pidfd is not None:
                    os.close(pidfd)
                raise FrameTooLargeError(
                    f"process {owner_pid} already holds {held} shared-memory regions; "
                    f"the limit is {MAX_REGIONS_PER_PROCESS}"
                )
            if owner is None:
                owner = self._owners[owner_pid] = _Owner(owner_pid, pidfd)
            elif pidfd is not None:
                os.close(pidfd)
            region = _Region(name, path, size, owner_pid, mapping, np.frombuffer(mapping, dtype=np.uint8))
            self._regions[name] = region
            owner.regions.add(name)
        log.debug("shared memory: mapped %s (%d bytes) for process %d", name, size, owner_pid)
        return region

    def unregister(self, name: str) -> None:
        with self._lock:
            region = self._regions.pop(name, None)
            if region is not None:
                self._drop(region, unlink=True)

    def get(self, name: str) -> _Region:
        with self._lock:
            region = self._regions.get(name)
        if region is None:
            raise SharedMemoryError(
                f"no shared-memory region {name!r} on this server (it restarted, or the region was released): "
                "register it again"
            )
        return region

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._regions)

    def close(self) -> None:
        """Release every region (the server is stopping)."""
        self._stop.set()
        self._reaper.join(timeout=5)
        with self._lock:
            for region in list(self._regions.values()):
                self._drop(region, unlink=True)
            self._regions.clear()
            for owner in self._owners.values():
                if owner.pidfd is not None:
                    os.close(owner.pidfd)
            self._owners.clear()
            self._close_pending()

    # -- releasing ------------------------------------------------------------------------------

    def _drop(self, region: _Region, *, unlink: bool) -> None:
        """Forget ``region`` (lock held): unlink its file, unmap it once no array views it."""
        owner = self._owners.get(region.owner_pid)
        if owner is not None:
            owner.regions.discard(region.name)
            if not owner.regions:
                del self._owners[region.owner_pid]
                if owner.pidfd is not None:
                    os.close(owner.pidfd)
        if unlink:
            try:
                region.path.unlink()
            except FileNotFoundError:
                pass  # the client unlinked it first
            except OSError as error:
                log.warning("shared memory: cannot unlink %s: %s", region.path, error.strerror)
        # Unmapped once no array views it: calls in flight keep reading valid memory meanwhile.
        self._closing.append(region.mapping)
        self._close_pending()

    def _close_pending(self) -> None:
        still: list[mmap.mmap] = []
        for mapping in self._closing:
            try:
                mapping.close()
            except BufferError:  # a call in flight still reads it; retried by the reaper
                still.append(mapping)
        self._closing = still

    def _reap(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched = {o.pidfd: o.pid for o in self._owners.values() if o.pidfd is not None}
                unwatched = [o.pid for o in self._owners.values() if o.pidfd is None]
            ended: list[int] = []
            if watched:
                try:
                    ready, _, _ = select.select(list(watched), [], [], self._poll_seconds)
                except (OSError, ValueError):  # a pidfd closed under us: look again
                    ready = []
                ended += [watched[fd] for fd in ready]
            else:
                self._stop.wait(self._poll_seconds)
            ended += [pid for pid in unwatched if not _alive(pid)]
            with self._lock:
                for pid in ended:
                    self._release_owner(pid)
                if self._closing:
                    self._close_pending()

    def _release_owner(self, pid: int) -> None:
        """Drop every region of a process that ended (lock held). A method of its own so that no
        reference to a region outlives it in the reaper's frame and keeps its mapping alive."""
        owner = self._owners.get(pid)
        if owner is None:
            return
        log.info("shared memory: process %d ended; releasing %d region(s)", pid, len(owner.regions))
        for name in list(owner.regions):
            region = self._regions.pop(name, None)
            if region is not None:
                self._drop(region, unlink=True)
        self._owners.pop(pid, None)


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it ends), or None where the OS has none."""
    opener = getattr(os, "pidfd_open", None)
    try:
        if opener is not None:
            return int(opener(pid))
        os.kill(pid, 0)
    except ProcessLookupError:
        raise SharedMemoryError(f"process {pid} does not run on this machine; send bytes instead") from None
    except PermissionError:
        return None  # another user's process: watched by polling
    except OSError:
        return None
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- frames in regions ---------------------------------------------------------------------------


def uses_shm(request: inference_pb2.ProcessRequest) -> bool:
    """True when a Process request references shared memory (inputs or outputs)."""
    return request.HasField("output_region") or any(f.shm_region for i in request.inputs for f in i.frames)


def _span(region: _Region, offset: int, size: int, what: str) -> np.ndarray:
    if offset < HEADER_BYTES or offset + size > region.size:
        raise FrameError(
            f"{what}: bytes {offset}..{offset + size} are outside shared-memory region {region.name!r} "
            f"(frames lie in bytes {HEADER_BYTES}..{region.size})"
        )
    return region.buffer[offset : offset + size]


def _frame_in_region(table: RegionTable, msg: frame_pb2.Frame, what: str) -> Frame:
    if not msg.shm_region:
        return codec.frame_from_proto(msg)
    region = table.get(msg.shm_region)
    offset = msg.shm_offset
    arrays = []
    for channel in msg.channels:
        if channel.data:
            raise FrameError(f"{what} channel {channel.name!r} carries bytes and a shared-memory reference")
        dtype, shape, size = channel_layout(msg, channel)
        if channel.byte_size != size:
            raise FrameError(f"{what} channel {channel.name!r} announces {channel.byte_size} bytes; it needs {size}")
        view = _span(region, offset, size, f"{what} channel {channel.name!r}")
        # Read-only: a tool must never write into the client's input bytes.
        array = view.view(dtype).reshape(shape)
        array.flags.writeable = False
        arrays.append(array)
        offset += size
    return frame_from_arrays(msg, arrays)


def decode_call(
    table: RegionTable, request: inference_pb2.ProcessRequest, digest: tuple[int, int] | None
) -> ProcessCall:
    """The call a shared-memory request holds, its frames viewing the regions in place.

    Every frame is scanned for NaN/Inf here while the provenance source (``digest``: input and
    frame index) is hashed on another thread (xxhash lets go of the GIL), so both passes over the
    pixels overlap instead of following one another.
    """
    frames = {
        (i, j): _frame_in_region(table, f, f"input {inp.name!r} frame {j}")
        for i, inp in enumerate(request.inputs)
        for j, f in enumerate(inp.frames)
    }
    call = call_from(request, frames)
    names = [inp.name for inp in request.inputs]
    digests: dict[tuple[int, int], str] = {}
    hasher: threading.Thread | None = None
    if digest is not None and digest in frames:
        source = frames[digest]

        def run_hash() -> None:
            digests[digest] = pixels_digest(source)

        hasher = threading.Thread(target=run_hash, name="plateforge-shm-digest", daemon=True)
        hasher.start()
    try:
        call.non_finite = {
            (names[i], j): [name for name, pixels in frame.channels.items() if has_non_finite(pixels)]
            for (i, j), frame in frames.items()
        }
    finally:
        if hasher is not None:
            hasher.join()
    call.pixel_digests = {(names[i], j): d for (i, j), d in digests.items()}
    return call


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _in_place(region_buffers: dict[str, np.ndarray], frame: Frame) -> tuple[str, int] | None:
    """(region, offset) when ``frame``'s channels already lie in one region, one after another in
    channel order, in the wire layout: then the response can point at them instead of copying."""
    arrays = list(frame.channels.values())
    if not arrays or any(not a.flags.c_contiguous or a.dtype.byteorder == ">" for a in arrays):
        return None
    start = _address(arrays[0])
    for name, buffer in region_buffers.items():
        base = _address(buffer)
        if not base + HEADER_BYTES <= start < base + buffer.size:
            continue
        position = start
        for array in arrays:
            if _address(array) != position or position + array.nbytes > base + buffer.size:
                return None
            position += array.nbytes
        return name, start - base
    return None


def encode_result(
    table: RegionTable, request: inference_pb2.ProcessRequest, result: ProcessResult
) -> inference_pb2.ProcessResponse:
    """The response to a shared-memory request: outputs left where they lie, or written into the
    request's output region; outputs without an output region (or that do not fit) as bytes."""
    if not request.HasField("output_region"):
        return codec.encode_result(result)
    target = request.output_region
    region = table.get(target.region)
    response = codec.encode_result(result, with_data=False)
    inputs = {f.shm_region for i in request.inputs for f in i.frames if f.shm_region}
    buffers = {name: table.get(name).buffer for name in inputs}
    offset = _aligned(target.offset)
    end = target.offset + target.byte_size
    if target.offset < HEADER_BYTES or end > region.size:
        raise FrameError(
            f"output region: bytes {target.offset}..{end} are outside shared-memory region {region.name!r} "
            f"(frames lie in bytes {HEADER_BYTES}..{region.size})"
        )
    for out, frame in zip(response.outputs, result.outputs.values(), strict=True):
        found = _in_place(buffers, frame)
        if found is not None:
            out.frame.shm_region, out.frame.shm_offset = found
            continue
        if offset + frame.nbytes <= end:
            out.frame.shm_region, out.frame.shm_offset = region.name, offset
            for pixels in frame.channels.values():
                size = pixels.nbytes
                region.buffer[offset : offset + size] = little_endian(pixels).reshape(-1).view(np.uint8)
                offset += size
            offset = _aligned(offset)
            continue
        for channel, pixels in zip(out.frame.channels, frame.channels.values(), strict=True):
            channel.data = little_endian(pixels).tobytes()
    return response


def _aligned(offset: int) -> int:
    return (offset + 63) // 64 * 64


# -- the service ---------------------------------------------------------------------------------


class SharedMemoryService:
    """plateforge.v1.SharedMemory: RegisterRegion and UnregisterRegion over a RegionTable."""

    def __init__(self, table: RegionTable) -> None:
        self.table = table

    def RegisterRegion(
        self, request: shm_pb2.RegisterRegionRequest, context: grpc.ServicerContext
    ) -> shm_pb2.RegisterRegionResponse:
        region = self.table.register(request.name, request.byte_size, request.nonce, request.owner_pid)
        return shm_pb2.RegisterRegionResponse(name=region.name, byte_size=region.size)

    def UnregisterRegion(
        self, request: shm_pb2.UnregisterRegionRequest, context: grpc.ServicerContext
    ) -> shm_pb2.UnregisterRegionResponse:
        if not _NAME.match(request.name):
            raise FrameError(f"shared-memory region name {request.name!r} is not 'plateforge-' then letters, digits")
        self.table.unregister(request.name)
        return shm_pb2.UnregisterRegionResponse()


def add_shm_service(server: grpc.Server, table: RegionTable) -> SharedMemoryService:
    service = SharedMemoryService(table)
    handlers = {
        "RegisterRegion": grpc.unary_unary_rpc_method_handler(
            service.RegisterRegion,
            request_deserializer=shm_pb2.RegisterRegionRequest.FromString,
            response_serializer=shm_pb2.RegisterRegionResponse.SerializeToString,
        ),
        "UnregisterRegion": grpc.unary_unary_rpc_method_handler(
            service.UnregisterRegion,
            request_deserializer=shm_pb2.UnregisterRegionRequest.FromString,
            response_serializer=shm_pb2.UnregisterRegionResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SHM_SERVICE_NAME, handlers),))
    return service
