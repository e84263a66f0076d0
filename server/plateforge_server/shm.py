"""The server's side of same-host shared memory (protocol: proto/plateforge/v1/shm.proto).

A client on this machine creates ``/dev/shm/plateforge-…``, writes a nonce at its start and
registers it; the server opens it once and from then on reads request frames out of it and
writes outputs into the part of the region the request names, or answers with a reference to
the input's own bytes when an output *is* that input (passthrough, untouched channels). The
nonce proves both ends see the same file, so a client behind a tunnel or in another machine's
container is refused and falls back to bytes.

A region is bound to the client that registered it: RegisterRegion answers a random secret that
every later use (a frame's reference, an output region, UnregisterRegion) must present, so a
token holder who only knows a region's name (``ls /dev/shm``) can neither read, overwrite nor
release it. A region file must belong to the server's own user, so no other user can hold it.

A mapped file that its owner truncates kills the mapping process with SIGBUS on its next access,
and nothing in Python can catch that. So the server maps only what cannot shrink: a memfd the
client sealed (F_SEAL_SHRINK, F_SEAL_GROW), opened through ``/proc/<pid>/fd/<n>``, is read in
place with no copy. A plain ``/dev/shm`` file is never mapped: frames are copied out of it with
``preadv`` into zeroed buffers (a short read is an error naming the region) and outputs written
with ``pwritev``, so a truncated region costs the call, never the server. The copy costs about
two memcpys of the frame under load (bench/transport.py, ``shm_vs_memcpy``), which is why the
client uses sealed memfds wherever the system has them.

A region belongs to the process that registered it: the server watches that process through a
pidfd and, when it ends, unmaps the region and unlinks its file, so a client that crashed leaves
nothing in /dev/shm. Stopping the server releases every region.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import logging
import mmap
import os
import re
import secrets
import select
import stat
import threading
import weakref
from collections.abc import Iterator
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
from plateforge.v1 import frame_pb2, inference_pb2, shm_pb2, shm_pb2_grpc

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
#: Length of the secret RegisterRegion answers; every use of the region must present it.
SECRET_BYTES = 32
#: Regions one process may hold at once: a client keeps a few (one per call in flight).
MAX_REGIONS_PER_PROCESS = 64
#: Seals a memfd needs before the server maps it: then nobody, its creator included, can shrink it.
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
_NAME = re.compile(r"^plateforge-[A-Za-z0-9_-]{1,100}$")

log = logging.getLogger("plateforge_server")


@dataclass
class _Region:
    name: str
    path: Path | None  # the /dev/shm file, unlinked on release; None for a memfd
    size: int
    owner_pid: int
    fd: int  # open read-write; closed when the region is dropped (reads use a dup of it)
    secret: bytes
    #: A sealed memfd is mapped (it cannot shrink): ``buffer`` views all of it. A /dev/shm file
    #: is not: None, and frames are copied out of it.
    mapping: mmap.mmap | None = None
    buffer: np.ndarray | None = None


@dataclass(frozen=True)
class _Copy:
    """Where the bytes of a frame the server copied out of a region came from."""

    region: str
    offset: int
    size: int


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
        #: The frames copied out of regions that are still alive, by the address of their
        #: buffer: an output that is one of them is answered with a reference to its region.
        #: An entry goes with its buffer (weakref.finalize), so an address never names a stale copy.
        self._copies: dict[int, _Copy] = {}
        # Mappings still viewed by an array in flight: closed once nothing views them.
        self._closing: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_seconds = poll_seconds
        self._reaper = threading.Thread(target=self._reap, name="plateforge-shm-reaper", daemon=True)
        self._reaper.start()

    # -- registration -------------------------------------------------------------------------

    def register(self, name: str, size: int, nonce: bytes, owner_pid: int, memfd: int = 0) -> _Region:
        if not _NAME.match(name):
            raise FrameError(f"shared-memory region name {name!r} is not 'plateforge-' then letters, digits, - or _")
        if size < HEADER_BYTES:
            raise FrameError(f"shared-memory region {name!r}: byte_size {size} is below the {HEADER_BYTES}-byte header")
        if len(nonce) != NONCE_BYTES:
            raise FrameError(f"shared-memory region {name!r}: the nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")
        if owner_pid <= 0:
            raise FrameError(f"shared-memory region {name!r}: owner_pid must be a process id, got {owner_pid}")
        if memfd < 0:
            raise FrameError(f"shared-memory region {name!r}: memfd must be a descriptor number or 0, got {memfd}")
        path: Path | None = None
        if memfd:
            where = f"/proc/{owner_pid}/fd/{memfd}"
            flags = os.O_RDWR | os.O_CLOEXEC  # a /proc fd link is a link by design: no O_NOFOLLOW
        else:
            path = self.directory / name
            where, flags = str(path), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            if memfd and os.readlink(where) != f"/memfd:{name} (deleted)":
                # Checked before opening, so a descriptor naming a device or a pipe is never
                # opened (that alone can have effects); checked again on what was opened.
                raise SharedMemoryError(
                    f"shared-memory region {name!r}: descriptor {memfd} of process {owner_pid} is not its memfd"
                )
            fd = os.open(where, flags | os.O_NONBLOCK)
        except OSError as error:
            raise SharedMemoryError(
                f"cannot open shared-memory region {name!r} ({error.strerror}): the client is not on this "
                "machine or not allowed to share memory with the server; send bytes instead"
            ) from None
        mapping: mmap.mmap | None = None
        try:
            if memfd:
                _check_memfd(fd, name)
            _check_file(fd, name, size, nonce)
            if memfd:
                mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            pidfd = _open_pidfd(owner_pid)
        except BaseException:
            if mapping is not None:
                mapping.close()
            os.close(fd)
            raise
        secret = secrets.token_bytes(SECRET_BYTES)
        with self._lock:
            old = self._regions.pop(name, None)
            if old is not None:  # registered again (the client thought we had lost it): a new secret
                self._drop(old, unlink=False)
            owner = self._owners.get(owner_pid)
            held = len(owner.regions) if owner is not None else 0
            if held >= MAX_REGIONS_PER_PROCESS:
                os.close(fd)
                if mapping is not None:
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
            region = _Region(name, path, size, owner_pid, fd, secret)
            if mapping is not None:
                region.mapping, region.buffer = mapping, np.frombuffer(mapping, dtype=np.uint8)
            self._regions[name] = region
            owner.regions.add(name)
        log.debug("shared memory: registered %s (%d bytes) for process %d", name, size, owner_pid)
        return region

    def unregister(self, name: str, secret: bytes) -> None:
        """Release ``name``; unknown names are ignored, a held one needs the secret it was given."""
        with self._lock:
            region = self._regions.get(name)
            if region is None:
                return
            if not hmac.compare_digest(region.secret, secret):
                raise SharedMemoryError(
                    f"shared-memory region {name!r} was registered by another client: UnregisterRegion must "
                    "carry the secret RegisterRegion answered"
                )
            del self._regions[name]
            self._drop(region, unlink=True)

    def get(self, name: str, secret: bytes) -> _Region:
        """The region ``name`` if ``secret`` is the one its registration answered.

        An unknown name and a wrong secret get the same answer, so a caller learns nothing about
        regions that are not its own."""
        with self._lock:
            region = self._regions.get(name)
        if region is None or not hmac.compare_digest(region.secret, secret):
            raise SharedMemoryError(
                f"no shared-memory region {name!r} registered with this secret on this server (it restarted, "
                "the region was released, or the request lacks the secret RegisterRegion answered): register it again"
            )
        return region

    @contextlib.contextmanager
    def file(self, region: _Region) -> Iterator[int]:
        """A descriptor of ``region``'s file for one read or write: a duplicate, so that a region
        released meanwhile (its own descriptor closed, the number reused) cannot redirect it."""
        with self._lock:
            if self._regions.get(region.name) is not region:
                raise SharedMemoryError(f"shared-memory region {region.name!r} was released during the call")
            fd = os.dup(region.fd)
        try:
            yield fd
        finally:
            os.close(fd)

    def remember_copy(self, buffer: np.ndarray, copy: _Copy) -> None:
        """``buffer`` holds ``copy``'s bytes (until it goes)."""
        address = _address(buffer)
        with self._lock:
            self._copies[address] = copy
        weakref.finalize(buffer, self._forget_copy, address, copy)

    def _forget_copy(self, address: int, copy: _Copy) -> None:
        with self._lock:
            if self._copies.get(address) is copy:
                del self._copies[address]

    def copies(self) -> dict[int, _Copy]:
        with self._lock:
            return dict(self._copies)

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
        """Forget ``region`` (lock held): unlink its file and close it. A read in flight holds a
        duplicate descriptor (:meth:`file`), which stays valid until it is done; a mapping is
        closed once no array in flight views it."""
        owner = self._owners.get(region.owner_pid)
        if owner is not None:
            owner.regions.discard(region.name)
            if not owner.regions:
                del self._owners[region.owner_pid]
                if owner.pidfd is not None:
                    os.close(owner.pidfd)
        if unlink and region.path is not None:
            try:
                region.path.unlink()
            except FileNotFoundError:
                pass  # the client unlinked it first
            except OSError as error:
                log.warning("shared memory: cannot unlink %s: %s", region.path, error.strerror)
        os.close(region.fd)
        if region.mapping is not None:
            self._closing.append(region.mapping)
            region.buffer = None
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


def _check_memfd(fd: int, name: str) -> None:
    """Refuse a descriptor that is not the client's sealed memfd named ``name``: the name in its
    /proc link proves which file was opened (not some other file the owner holds open), and the
    seals that it can never shrink under the server's mapping."""
    link = os.readlink(f"/proc/self/fd/{fd}")
    if link != f"/memfd:{name} (deleted)":
        raise SharedMemoryError(f"shared-memory region {name!r}: the descriptor given is {link!r}, not its memfd")
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    if seals & _SEALS != _SEALS:
        raise SharedMemoryError(
            f"shared-memory region {name!r}: the memfd must be sealed against shrinking and growing "
            "(F_SEAL_SHRINK | F_SEAL_GROW) before it is registered"
        )


def _check_file(fd: int, name: str, size: int, nonce: bytes) -> None:
    """Refuse a region file the server must not hold: not a regular file, another user's (who
    could shrink or rewrite it at will), shorter than registered, or without the client's nonce."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise SharedMemoryError(f"shared-memory region {name!r} is not a regular file")
    if info.st_uid != os.geteuid():
        raise SharedMemoryError(
            f"shared-memory region {name!r} belongs to uid {info.st_uid}; this server runs as uid {os.geteuid()} "
            "and shares memory only with its own user's files: send bytes instead"
        )
    if info.st_size < size:
        raise FrameError(f"shared-memory region {name!r} holds {info.st_size} bytes; it was registered as {size}")
    if not hmac.compare_digest(os.pread(fd, NONCE_BYTES, 0), nonce):
        raise SharedMemoryError(
            f"shared-memory region {name!r} does not hold the client's nonce: client and server do not "
            "share this file (another machine or container); send bytes instead"
        )


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


def _channel_layouts(
    region: _Region, msg: frame_pb2.Frame, what: str
) -> list[tuple[np.dtype, tuple[int, int], int]]:
    """Each channel's dtype, shape and byte size, checked before a byte is read: no inline bytes
    beside the reference, the size its window and type need, and inside the region."""
    layouts: list[tuple[np.dtype, tuple[int, int], int]] = []
    offset = msg.shm_offset
    for channel in msg.channels:
        if channel.data:
            raise FrameError(f"{what} channel {channel.name!r} carries bytes and a shared-memory reference")
        dtype, shape, size = channel_layout(msg, channel)
        if channel.byte_size != size:
            raise FrameError(f"{what} channel {channel.name!r} announces {channel.byte_size} bytes; it needs {size}")
        _check_span(region, offset, size, f"{what} channel {channel.name!r}")
        layouts.append((dtype, shape, size))
        offset += size
    return layouts


def _read_only_frame(
    msg: frame_pb2.Frame, buffer: np.ndarray, start: int, layouts: list[tuple[np.dtype, tuple[int, int], int]]
) -> Frame:
    """The frame whose channels lie one after another in ``buffer`` from ``start``, as read-only
    views: a tool must never write into the client's bytes (or into what was hashed)."""
    arrays = []
    position = start
    for dtype, shape, size in layouts:
        array = buffer[position : position + size].view(dtype).reshape(shape)
        array.flags.writeable = False
        arrays.append(array)
        position += size
    return frame_from_arrays(msg, arrays)


def _check_span(region: _Region, offset: int, size: int, what: str) -> None:
    if offset < HEADER_BYTES or offset + size > region.size:
        raise FrameError(
            f"{what}: bytes {offset}..{offset + size} are outside shared-memory region {region.name!r} "
            f"(frames lie in bytes {HEADER_BYTES}..{region.size})"
        )


def _read_exactly(fd: int, buffer: np.ndarray, offset: int, region: _Region, what: str) -> None:
    """Fill ``buffer`` from the file at ``offset``. A read ends short only at the end of the file:
    the client shrank its region after registering it."""
    view = buffer.data.cast("B")
    done = 0
    while done < view.nbytes:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise FrameError(
                f"{what}: shared-memory region {region.name!r} ends at byte {offset + done}, but the frame needs "
                f"bytes {offset}..{offset + view.nbytes}: the file was truncated after it was registered"
            )
        done += got


def _frame_in_region(table: RegionTable, msg: frame_pb2.Frame, what: str) -> Frame:
    if not msg.shm_region:
        return codec.frame_from_proto(msg)
    region = table.get(msg.shm_region, msg.shm_secret)
    mapped = region.buffer  # read once: the region may be unregistered meanwhile
    layouts = _channel_layouts(region, msg, what)
    if mapped is not None:  # a sealed memfd: read in place
        return _read_only_frame(msg, mapped, msg.shm_offset, layouts)
    total = sum(size for _, _, size in layouts)
    # Zeroed, so a short read can never hand a tool another frame's bytes.
    buffer = np.zeros(total, dtype=np.uint8)
    with table.file(region) as fd:
        _read_exactly(fd, buffer, msg.shm_offset, region, what)
    table.remember_copy(buffer, _Copy(region.name, msg.shm_offset, total))
    return _read_only_frame(msg, buffer, 0, layouts)


def decode_call(
    table: RegionTable, request: inference_pb2.ProcessRequest, digest: tuple[int, int] | None
) -> ProcessCall:
    """The call a shared-memory request holds, its frames viewing the regions in place.

    Every frame is scanned for NaN/Inf here while the provenance source (``digest``: input and
    frame index) is hashed on another thread (xxhash lets go of the GIL), so both passes over the
    pixels overlap instead of following one another.
    """
    codec.check_channel_counts(codec.request_frames(request))
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


def _in_place(copies: dict[int, _Copy], regions: set[str], frame: Frame) -> tuple[str, int] | None:
    """(region, offset) when ``frame``'s channels are bytes the server copied out of one of
    ``regions`` (this request's inputs), one after another in channel order, in the wire layout:
    then the response can point at the client's own bytes instead of copying them back."""
    arrays = list(frame.channels.values())
    if not arrays or any(not a.flags.c_contiguous or a.dtype.byteorder == ">" for a in arrays):
        return None
    start = _address(arrays[0])
    for base, copy in copies.items():
        if copy.region not in regions or not base <= start < base + copy.size:
            continue
        position = start
        for array in arrays:
            if _address(array) != position or position + array.nbytes > base + copy.size:
                return None
            position += array.nbytes
        offset = copy.offset + (start - base)
        return (copy.region, offset) if offset >= HEADER_BYTES else None
    return None


def _write_exactly(fd: int, pixels: list[np.ndarray], offset: int) -> None:
    views = [p.data.cast("B") for p in pixels]
    while views:
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= views[0].nbytes:
            written -= views[0].nbytes
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def encode_result(
    table: RegionTable, request: inference_pb2.ProcessRequest, result: ProcessResult
) -> inference_pb2.ProcessResponse:
    """The response to a shared-memory request: outputs left where they lie, or written into the
    request's output region; outputs without an output region (or that do not fit) as bytes."""
    if not request.HasField("output_region"):
        return codec.encode_result(result)
    target = request.output_region
    region = table.get(target.region, target.secret)
    response = codec.encode_result(result, with_data=False)
    inputs = {f.shm_region for i in request.inputs for f in i.frames if f.shm_region}
    copies = table.copies()
    for given in request.inputs:
        for msg in given.frames:
            mapped = table.get(msg.shm_region, msg.shm_secret).buffer if msg.shm_region else None
            if mapped is not None:  # a sealed memfd the tool read in place: all of it is the client's bytes
                copies[_address(mapped)] = _Copy(msg.shm_region, 0, mapped.size)
    offset = _aligned(target.offset)
    end = target.offset + target.byte_size
    if target.offset < HEADER_BYTES or end > region.size:
        raise FrameError(
            f"output region: bytes {target.offset}..{end} are outside shared-memory region {region.name!r} "
            f"(frames lie in bytes {HEADER_BYTES}..{region.size})"
        )
    for out, frame in zip(response.outputs, result.outputs.values(), strict=True):
        found = _in_place(copies, inputs, frame)
        if found is not None:
            out.frame.shm_region, out.frame.shm_offset = found
            continue
        if offset + frame.nbytes <= end:
            out.frame.shm_region, out.frame.shm_offset = region.name, offset
            flats = [little_endian(p).reshape(-1).view(np.uint8) for p in frame.channels.values()]
            mapped = region.buffer
            if mapped is not None:  # sealed memfd: into the mapping
                position = offset
                for flat in flats:
                    mapped[position : position + flat.size] = flat
                    position += flat.size
            else:
                with table.file(region) as fd:
                    # Written, not mapped: a file shrunk meanwhile grows back, and the server lives.
                    _write_exactly(fd, flats, offset)
            offset = _aligned(offset + frame.nbytes)
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
        region = self.table.register(
            request.name, request.byte_size, request.nonce, request.owner_pid, memfd=request.memfd
        )
        return shm_pb2.RegisterRegionResponse(name=region.name, byte_size=region.size, secret=region.secret)

    def UnregisterRegion(
        self, request: shm_pb2.UnregisterRegionRequest, context: grpc.ServicerContext
    ) -> shm_pb2.UnregisterRegionResponse:
        if not _NAME.match(request.name):
            raise FrameError(f"shared-memory region name {request.name!r} is not 'plateforge-' then letters, digits")
        self.table.unregister(request.name, request.secret)
        return shm_pb2.UnregisterRegionResponse()


def add_shm_service(server: grpc.Server, table: RegionTable) -> SharedMemoryService:
    service = SharedMemoryService(table)
    shm_pb2_grpc.add_SharedMemoryServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    return service
