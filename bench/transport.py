"""Transport benchmark: what does moving a frame through the plateforge server cost?

What is measured
----------------
For 1080p (1920x1080) and 4K (4096x2160) RGBA frames of random half (float16) and float
(float32) samples, the wall time of one round trip, client to server and back, of a frame that
arrives decoded as numpy arrays bit-for-bit equal to the ones sent (checked once per config):

* ``unary``  -- ``Client.process("passthrough", ..., transport="unary")``: one ``Process`` call,
  the whole frame in one message each way (a 4K float RGBA frame is 141.6 MB and fits the
  160 MiB message limit);
* ``stream`` -- the same through ``ProcessStream`` (``transport="stream"``): a header, then the
  channels in ``DataChunk`` messages of ``chunk_bytes`` each way;
* ``shm``    -- the same through same-host shared memory (``transport="shm"``, plateforge.shm):
  the client copies the frame into a registered region (a memfd sealed against resizing, which the
  server may map safely), ``Process`` carries references and the region's secret, the server
  reads the frame in place (passthrough answers with a reference to those same bytes)
  and the client copies the result out: two copies of the pixels per round trip, plus the
  server's mandatory passes over them (NaN/Inf scan, and the provenance digest of the source
  frame, run on two threads);
* ``memcpy`` -- the floor of any transport: one in-process copy of the same planar channel bytes
  into a preallocated buffer (``numpy.copyto``);
* ``socket`` -- the baseline: the same planar channel bytes over a plain loopback TCP socket to
  an echo server;
* ``grpc_bytes`` -- the floor of gRPC streaming itself: the same planar channel bytes, cut into
  ``chunk_bytes`` messages, through one bidirectional-streaming method of a bare gRPC server (a
  separate process started with the same message-size options and a ThreadPoolExecutor) that
  has no serializers -- raw bytes in and out, no protobuf, no plateforge protocol -- and echoes
  each message straight back as it arrives; the client materialises the echoed chunks into a
  preallocated numpy buffer, as the socket baseline does.

The plateforge server runs as a separate process on 127.0.0.1 (started the way
``plateforge.localserver.local_server()`` starts one, with a token, offering only the
``passthrough`` model), so the numbers include everything a real call pays except model work: protobuf encoding,
HTTP/2 framing, the server's decode, its request checks (finite samples) and provenance hash,
its encode, and the client's decode.

Why the socket echo is the right baseline
-----------------------------------------
The question is how much the RPC layer costs *on top of* moving the bytes, on this machine. The
echo server is also a separate Python process on loopback, and it does the equivalent work: the
client serialises each channel from numpy (``tobytes()``), sends a length-prefixed payload, the
server reads it fully into a buffer before writing it back (as the plateforge server must gather
a whole frame before its tool can run), and the client receives into a preallocated numpy
buffer that becomes the channel arrays. Nothing can round-trip a frame between two processes
faster than the kernel copies it, so ``stream_vs_socket`` is the RPC layer's overhead factor
and is comparable across machines in a way raw seconds are not. The project target is
ProcessStream within 1.3x of the socket at 4K half.

Why the bare gRPC floor is there too
------------------------------------
``stream_vs_socket`` lumps together two costs: what gRPC itself costs to move the bytes (HTTP/2
framing, flow control, the C core's copies, its threads handing messages to Python) and what
plateforge's protocol and server add on top (protobuf messages, the stream header, chunk
assembly, request checks, provenance hashing, the tool call). ``grpc_bytes`` moves the same bytes
in the same chunk sizes through gRPC with none of the second kind, so ``grpc_bytes_vs_socket``
is what gRPC costs over the kernel and ``stream_vs_grpc_bytes`` is what plateforge adds over
gRPC: the part plateforge's code can change. (Its server echoes each chunk as it arrives rather
than gathering the frame first, so the floor is, if anything, optimistic, and
``stream_vs_grpc_bytes`` an upper bound on plateforge's share.)

Why memcpy, and the server's own passes
---------------------------------------
Shared memory removes the socket, so what is left to compare it with is the copying itself:
``shm_vs_memcpy`` is how many in-process copies of the frame one shared-memory round trip costs
(the target is at most 2.5 at 4K half), and ``socket_vs_shm`` how many times faster it is than
the raw socket (target at least 10). Every transport also pays the server's checks on the input:
``server_passes`` times them in-process on the same frame (``pixel_digest``:
provenance.pixels_digest, XXH3-128; ``finite_scan``: frames.has_non_finite over every channel;
and ``sha256`` of the same bytes, which the digest was until it cost 60 % of a shared-memory
round trip, for the record), so the part of ``shm`` that is not transport can be read off
directly; ``shm_vs_memcpy_without_passes`` subtracts the longer of the digest and the scan (they
run concurrently on the server).

Each repeat measures every method once, rotating their order, so drift (thermal, other load on a
small machine) hits all methods alike; warm-up rounds come first and are not counted. The result
is one JSON document on stdout; progress goes to stderr.

    python bench/transport.py [--repeats N] [--warmup N] [--quick] [--sizes 1080p,4k]
                              [--types half,float] [--chunk-bytes N]

``--chunk-bytes`` overrides the DataChunk size on both ends (``plateforge.calls.CHUNK_BYTES``
otherwise).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from plateforge import calls, streams
from plateforge.client import Client
from plateforge.frames import Frame
from plateforge.localserver import READY_PREFIX, start_ready, stop

SIZES: dict[str, tuple[int, int]] = {"1080p": (1920, 1080), "4k": (4096, 2160)}
TYPES: dict[str, type[np.floating[Any]]] = {"half": np.float16, "float": np.float32}
METHODS = ("memcpy", "socket", "grpc_bytes", "unary", "stream", "shm")
#: The one method the bare gRPC echo server offers (raw bytes, no serializers).
GRPC_ECHO_SERVICE = "plateforgebench.Echo"
GRPC_ECHO_METHOD = f"/{GRPC_ECHO_SERVICE}/Echo"
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", calls.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", calls.MAX_MESSAGE_BYTES),
]
#: ``--quick`` divides both dimensions by this (keeps the aspect ratio; for tests, not numbers).
QUICK_DIVISOR = 16
PASSTHROUGH = "plateforge_server.tools.passthrough"
TARGET_KEY = "4k_half"
TARGET_MAX = 1.3
#: Shared memory at 4K half: at most this many in-process copies of the frame ...
SHM_VS_MEMCPY_MAX = 2.5
#: ... and at least this many times faster than the raw socket.
SOCKET_VS_SHM_MIN = 10.0
_HEADER = struct.Struct("<Q")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- frames ---------------------------------------------------------------------------------------


def make_frame(width: int, height: int, dtype: type[np.floating[Any]], seed: int) -> Frame:
    """A random RGBA frame in [0, 1): finite (the server refuses NaN/Inf) and incompressible."""
    rng = np.random.default_rng(seed)
    pixels = rng.random((height, width, 4), dtype=np.float32).astype(dtype, copy=False)
    return Frame.from_array(pixels)


def same_pixels(sent: Frame, received: dict[str, np.ndarray]) -> bool:
    """Bit-for-bit equality of every channel (names, dtypes, shapes and bytes)."""
    if list(sent.channels) != list(received):
        return False
    for name, pixels in sent.channels.items():
        other = received[name]
        if other.dtype != pixels.dtype or other.shape != pixels.shape:
            return False
        if not np.array_equal(np.ascontiguousarray(pixels).view(np.uint8), np.ascontiguousarray(other).view(np.uint8)):
            return False
    return True


# -- child processes --------------------------------------------------------------------------------


@contextmanager
def spawn(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[str]:
    """Run ``command`` until the ``with`` block ends; yield the address from its ready line."""
    process, address = start_ready(command, env=env, timeout=timeout)
    try:
        yield address
    finally:
        stop(process)


@contextmanager
def grpc_server(chunk_bytes: int | None) -> Iterator[tuple[str, str]]:
    """A plateforge server subprocess on 127.0.0.1 with a random token: yields (address, token).

    Started as ``plateforge.localserver.local_server()`` starts one (token in the environment,
    wait for the ready line), but from this script so that it serves ``passthrough`` only (the
    benchmark needs nothing else, and must not depend on other tools importing) and can take
    another chunk size.
    """
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "PLATEFORGE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-grpc"]
    if chunk_bytes is not None:
        command += ["--chunk-bytes", str(chunk_bytes)]
    with spawn(command, env=env) as address:
        yield address, token


def set_chunk_bytes(chunk_bytes: int) -> None:
    """Make this process's codec cut streams into ``chunk_bytes`` chunks (both directions)."""
    for fn in (streams.stream_call, streams.stream_result):
        defaults = fn.__kwdefaults__ or {}
        fn.__kwdefaults__ = {**defaults, "chunk_bytes": chunk_bytes}


def serve_grpc(chunk_bytes: int | None) -> int:
    """``--serve-grpc``: ``plateforge serve`` (same defaults) offering only ``passthrough``."""
    if chunk_bytes is not None:
        set_chunk_bytes(chunk_bytes)
    from plateforge_server.app import ServerConfig, serve

    return serve(ServerConfig(host="127.0.0.1", port=0, token=os.environ["PLATEFORGE_TOKEN"], tools=(PASSTHROUGH,)))


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("connection closed mid-payload")
        got += n


def serve_echo() -> int:
    """``--echo-server``: read each length-prefixed payload fully into a buffer, send it back."""
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{READY_PREFIX}{host}:{port}", flush=True)
    head = bytearray(_HEADER.size)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                try:
                    _recv_into(conn, memoryview(head))
                except ConnectionError:
                    break
                (size,) = _HEADER.unpack(head)
                buffer = np.empty(size, dtype=np.uint8)
                _recv_into(conn, buffer.data.cast("B"))
                conn.sendall(head)
                conn.sendall(buffer.data)


def serve_grpc_echo() -> int:
    """``--grpc-echo-server``: one stream-stream method, raw bytes, each message echoed back.

    Same message-size options and thread pool size as the plateforge server, no interceptor,
    no serializers: the floor of a gRPC stream round trip in Python.
    """
    from concurrent import futures

    from plateforge_server.app import ServerConfig

    def echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from requests

    handler = grpc.method_handlers_generic_handler(
        GRPC_ECHO_SERVICE, {"Echo": grpc.stream_stream_rpc_method_handler(echo)}
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=ServerConfig().workers, thread_name_prefix="echo"),
        handlers=[handler],
        options=[*GRPC_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise SystemExit("cannot listen on 127.0.0.1")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"{READY_PREFIX}127.0.0.1:{port}", flush=True)
    stop.wait()
    server.stop(0).wait()
    return 0


# -- one round trip each ------------------------------------------------------------------------------


class SocketEcho:
    """The baseline client: channels out as bytes, back into one numpy buffer, split into arrays."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        self.sock.close()

    def round_trip(self, frame: Frame) -> dict[str, np.ndarray]:
        channels = frame.channels
        self.sock.sendall(_HEADER.pack(frame.nbytes))
        for pixels in channels.values():
            self.sock.sendall(pixels.tobytes())
        head = bytearray(_HEADER.size)
        _recv_into(self.sock, memoryview(head))
        (size,) = _HEADER.unpack(head)
        buffer = np.empty(size, dtype=np.uint8)
        _recv_into(self.sock, buffer.data.cast("B"))
        out: dict[str, np.ndarray] = {}
        offset = 0
        for name, pixels in channels.items():
            out[name] = buffer[offset : offset + pixels.nbytes].view(pixels.dtype).reshape(pixels.shape)
            offset += pixels.nbytes
        return out


class GrpcBytesEcho:
    """The gRPC floor's client: channel bytes out in ``chunk_bytes`` messages, back into numpy.

    Each channel is cut as plateforge cuts it (chunks never span channels), each chunk goes from
    numpy to ``bytes`` (``tobytes()``), and the echoed chunks are copied into one preallocated
    buffer that becomes the channel arrays.
    """

    def __init__(self, address: str, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=60)
        self.call = self.channel.stream_stream(GRPC_ECHO_METHOD, None, None)

    def close(self) -> None:
        self.channel.close()

    def _requests(self, frame: Frame) -> Iterator[bytes]:
        step = self.chunk_bytes
        for pixels in frame.channels.values():
            flat = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)
            for offset in range(0, flat.size, step):
                yield flat[offset : offset + step].tobytes()

    def round_trip(self, frame: Frame) -> dict[str, np.ndarray]:
        buffer = np.empty(frame.nbytes, dtype=np.uint8)
        offset = 0
        for data in self.call(self._requests(frame), timeout=600.0):
            end = offset + len(data)
            buffer[offset:end] = np.frombuffer(data, dtype=np.uint8)
            offset = end
        if offset != frame.nbytes:
            raise ConnectionError(f"grpc echo returned {offset} of {frame.nbytes} bytes")
        out: dict[str, np.ndarray] = {}
        offset = 0
        for name, pixels in frame.channels.items():
            out[name] = buffer[offset : offset + pixels.nbytes].view(pixels.dtype).reshape(pixels.shape)
            offset += pixels.nbytes
        return out


class Memcpy:
    """The floor: the frame's channel bytes copied once, in this process, into one buffer."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, dtype=np.uint8)

    def round_trip(self, frame: Frame) -> dict[str, np.ndarray]:
        if self.buffer.size != frame.nbytes:
            self.buffer = np.empty(frame.nbytes, dtype=np.uint8)
            self.buffer.fill(0)  # fault the pages in once, outside the timed copies
        out: dict[str, np.ndarray] = {}
        offset = 0
        for name, pixels in frame.channels.items():
            target = self.buffer[offset : offset + pixels.nbytes].view(pixels.dtype).reshape(pixels.shape)
            np.copyto(target, pixels)
            out[name] = target
            offset += pixels.nbytes
        return out


def server_passes(frame: Frame, repeats: int) -> dict[str, float]:
    """Median seconds of the passes the server makes over every input, whatever the transport."""
    from plateforge.frames import has_non_finite
    from plateforge.provenance import pixels_digest

    def sha256() -> str:  # what the digest cost when it was sha256 (before XXH3-128), for the record
        digest = hashlib.sha256()
        for pixels in frame.channels.values():
            digest.update(pixels.reshape(-1).view(np.uint8).data)
        return digest.hexdigest()

    passes: dict[str, Callable[[], object]] = {
        "pixel_digest": lambda: pixels_digest(frame),
        "sha256": sha256,
        "finite_scan": lambda: [has_non_finite(p) for p in frame.channels.values()],
    }
    out = {}
    for name, fn in passes.items():
        times = []
        for _ in range(max(3, repeats)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        out[f"{name}_s"] = round(statistics.median(times), 6)
    return out


def grpc_round_trip(client: Client, transport: str) -> Callable[[Frame], dict[str, np.ndarray]]:
    def run(frame: Frame) -> dict[str, np.ndarray]:
        result = client.process("passthrough", {"plate": frame}, transport=transport)  # type: ignore[arg-type]
        return result.outputs["image"].channels

    return run


# -- measuring -------------------------------------------------------------------------------------


def summarise(times: list[float], nbytes: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "median_s": round(median, 6),
        "min_s": round(min(times), 6),
        "mb_per_s": round(nbytes / median / 1e6, 1),
        "all_s": [round(t, 6) for t in times],
    }


def measure(
    frame: Frame, methods: dict[str, Callable[[Frame], dict[str, np.ndarray]]], repeats: int, warmup: int
) -> dict[str, list[float]]:
    for name, method in methods.items():
        if not same_pixels(frame, method(frame)):
            raise AssertionError(f"{name}: the frame did not come back bit for bit")
    for _ in range(warmup - 1):
        for method in methods.values():
            method(frame)
    times: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for r in range(repeats):
        rotated = order[r % len(order) :] + order[: r % len(order)]
        for name in rotated:
            gc.collect()
            started = time.perf_counter()
            received = methods[name](frame)
            times[name].append(time.perf_counter() - started)
            del received
    return times


def ratio(a: float, b: float) -> float:
    return round(a / b, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}; choose from {sorted(SIZES)}")
    for t in types:
        if t not in TYPES:
            raise SystemExit(f"unknown type {t!r}; choose from {sorted(TYPES)}")
    repeats = 1 if args.quick and args.repeats is None else (args.repeats or 7)
    warmup = max(1, args.warmup if args.warmup is not None else (1 if args.quick else 2))
    if args.chunk_bytes is not None:
        set_chunk_bytes(args.chunk_bytes)
    chunk_bytes = args.chunk_bytes if args.chunk_bytes is not None else calls.CHUNK_BYTES

    settings: dict[str, Any] = {
        "repeats": repeats,
        "warmup": warmup,
        "quick": bool(args.quick),
        "chunk_bytes": chunk_bytes,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "grpc": grpc.__version__,
        "numpy": np.__version__,
        "protobuf": _protobuf_version(),
        "platform": platform.platform(),
        "server": "subprocess on 127.0.0.1",
        "baseline": "length-prefixed TCP echo, separate process on 127.0.0.1",
        "grpc_floor": "bare gRPC stream-stream echo of raw bytes, no serializers, separate process on 127.0.0.1",
        "model": "passthrough",
    }
    results: dict[str, Any] = {}
    echo_command = [sys.executable, str(Path(__file__).resolve()), "--echo-server"]
    grpc_echo_command = [sys.executable, str(Path(__file__).resolve()), "--grpc-echo-server"]
    with (
        spawn(echo_command) as echo_address,
        spawn(grpc_echo_command) as grpc_echo_address,
        grpc_server(args.chunk_bytes) as (address, token),
    ):
        log(f"plateforge server {address}, echo server {echo_address}, grpc echo server {grpc_echo_address}")
        echo = SocketEcho(echo_address)
        grpc_echo = GrpcBytesEcho(grpc_echo_address, chunk_bytes)
        client = Client(address, token=token, timeout=600.0)
        try:
            client.wait_ready(timeout=60)
            memcpy = Memcpy()
            methods = {
                "memcpy": memcpy.round_trip,
                "shm": grpc_round_trip(client, "shm"),
                "socket": echo.round_trip,
                "grpc_bytes": grpc_echo.round_trip,
                "unary": grpc_round_trip(client, "unary"),
                "stream": grpc_round_trip(client, "stream"),
            }
            for seed, (size, kind) in enumerate((s, t) for s in sizes for t in types):
                width, height = SIZES[size]
                if args.quick:
                    width, height = width // QUICK_DIVISOR, height // QUICK_DIVISOR
                key = f"{size}_{kind}"
                frame = make_frame(width, height, TYPES[kind], seed)
                log(f"{key}: {width}x{height} RGBA {kind}, {frame.nbytes / 1e6:.1f} MB, {repeats} repeats")
                times = measure(frame, methods, repeats, warmup)
                entry: dict[str, Any] = {"width": width, "height": height, "bytes": frame.nbytes}
                for name in METHODS:
                    entry[name] = summarise(times[name], frame.nbytes)
                copy, sock, floor, unary, stream, shared = (entry[m] for m in METHODS)
                entry["server_passes"] = passes = server_passes(frame, repeats)
                entry["shm_vs_memcpy"] = ratio(shared["median_s"], copy["median_s"])
                entry["shm_vs_memcpy_min"] = ratio(shared["min_s"], copy["min_s"])
                entry["socket_vs_shm"] = ratio(sock["median_s"], shared["median_s"])
                entry["stream_vs_shm"] = ratio(stream["median_s"], shared["median_s"])
                transport_only = shared["median_s"] - max(passes["pixel_digest_s"], passes["finite_scan_s"])
                entry["shm_vs_memcpy_without_passes"] = ratio(max(transport_only, 1e-6), copy["median_s"])
                entry["socket_vs_memcpy"] = ratio(sock["median_s"], copy["median_s"])
                entry["unary_vs_socket"] = ratio(unary["median_s"], sock["median_s"])
                entry["stream_vs_socket"] = ratio(stream["median_s"], sock["median_s"])
                entry["unary_vs_socket_min"] = ratio(unary["min_s"], sock["min_s"])
                entry["stream_vs_socket_min"] = ratio(stream["min_s"], sock["min_s"])
                entry["grpc_bytes_vs_socket"] = ratio(floor["median_s"], sock["median_s"])
                entry["stream_vs_grpc_bytes"] = ratio(stream["median_s"], floor["median_s"])
                entry["stream_vs_grpc_bytes_min"] = ratio(stream["min_s"], floor["min_s"])
                results[key] = entry
                log(
                    f"  socket {sock['median_s']:.4f} s  grpc_bytes {floor['median_s']:.4f} s "
                    f"({entry['grpc_bytes_vs_socket']}x)  unary {unary['median_s']:.4f} s "
                    f"({entry['unary_vs_socket']}x)  stream {stream['median_s']:.4f} s ({entry['stream_vs_socket']}x, "
                    f"{entry['stream_vs_grpc_bytes']}x grpc_bytes)\n  memcpy {copy['median_s']:.4f} s  shm "
                    f"{shared['median_s']:.4f} s ({entry['shm_vs_memcpy']}x memcpy, "
                    f"{entry['socket_vs_shm']}x faster than socket; pixel digest {passes['pixel_digest_s']:.4f} s, "
                    f"finite scan {passes['finite_scan_s']:.4f} s)"
                )
                del frame
        finally:
            client.close()
            grpc_echo.close()
            echo.close()

    measured = results.get(TARGET_KEY)
    each = (
        None
        if measured is None
        else {
            "stream_vs_socket": bool(measured["stream_vs_socket"] <= TARGET_MAX),
            "shm_vs_memcpy": bool(measured["shm_vs_memcpy"] <= SHM_VS_MEMCPY_MAX),
            "socket_vs_shm": bool(measured["socket_vs_shm"] >= SOCKET_VS_SHM_MIN),
        }
    )
    targets = {
        f"{TARGET_KEY}_stream_vs_socket_max": TARGET_MAX,
        f"{TARGET_KEY}_shm_vs_memcpy_max": SHM_VS_MEMCPY_MAX,
        f"{TARGET_KEY}_socket_vs_shm_min": SOCKET_VS_SHM_MIN,
        "each": each,
        "met": None if each is None else all(each.values()),
    }
    return {"settings": settings, "results": results, "targets": targets}


def _protobuf_version() -> str:
    from google.protobuf import __version__ as version
    from google.protobuf.internal import api_implementation

    return f"{version} ({api_implementation.Type()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None, help="timed round trips per method (default 7; 1 quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 2; 1 quick)")
    parser.add_argument("--quick", action="store_true", help=f"frames 1/{QUICK_DIVISOR} the size: checks, not numbers")
    parser.add_argument("--sizes", default="1080p,4k", help="comma-separated: 1080p, 4k (default both)")
    parser.add_argument("--types", default="half,float", help="comma-separated: half, float (default both)")
    parser.add_argument(
        "--chunk-bytes", type=int, default=None, help=f"DataChunk size on both ends (default {calls.CHUNK_BYTES})"
    )
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-grpc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grpc-echo-server", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.echo_server:
        return serve_echo()
    if args.serve_grpc:
        return serve_grpc(args.chunk_bytes)
    if args.grpc_echo_server:
        return serve_grpc_echo()
    if args.chunk_bytes is not None and args.chunk_bytes <= 0:
        raise SystemExit("--chunk-bytes must be positive")
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    json.dump(run(args), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
