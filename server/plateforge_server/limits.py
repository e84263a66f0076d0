"""What one caller may hold open: stream caps per peer and in all, and the idle deadline.

A call that waits costs the asyncio server no thread, but it still holds a little memory and a
slot in whatever it waits on. So streaming calls (ProcessStream, WatchJob, health Watch,
reflection) are counted: past ``max_streams`` in all, or ``max_streams_per_peer`` from one
address, a new stream is refused with RESOURCE_EXHAUSTED. Anonymous streams (health Watch, which
needs no token) have a cap of their own, ``max_anonymous_streams``, and do not count toward
``max_streams``: callers without the token can never take a token holder's slot. A peer is the caller's IP address
(its port changes with every connection, so it would bound nothing); all callers over a Unix
socket are one peer. A stream that sends nothing for ``idle_timeout`` seconds is ended with
DEADLINE_EXCEEDED, whether it never started or stalled half way.

Counters are only touched from the event loop's thread, so they need no lock.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from plateforge.errors import DeadlineError

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_ANONYMOUS_STREAMS",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_MAX_STREAMS_PER_PEER",
    "StreamLimits",
    "StreamSlots",
    "idle_guarded",
    "peer_host",
]

#: Seconds a stream may go without sending a message (a stalled or forgotten client).
DEFAULT_IDLE_TIMEOUT = 30.0
#: Streams open at once in all: each idle one holds a few KiB; a frame in flight holds its pixels.
DEFAULT_MAX_STREAMS = 512
#: Streams open at once in all from callers without the token (health Watch).
DEFAULT_MAX_ANONYMOUS_STREAMS = 128
#: Streams open at once from one IP address; a workstation's client keeps 2 in flight per sequence.
DEFAULT_MAX_STREAMS_PER_PEER = 128

_T = TypeVar("_T")


@dataclass(frozen=True)
class StreamLimits:
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_streams: int = DEFAULT_MAX_STREAMS
    max_streams_per_peer: int = DEFAULT_MAX_STREAMS_PER_PEER
    max_anonymous_streams: int = DEFAULT_MAX_ANONYMOUS_STREAMS

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0:
            raise ValueError(f"idle timeout must be above 0 seconds, got {self.idle_timeout}")
        caps = (self.max_streams, self.max_streams_per_peer, self.max_anonymous_streams)
        if min(caps) < 1:
            raise ValueError(
                f"stream caps must be at least 1, got {self.max_streams} in all, {self.max_streams_per_peer} per "
                f"peer, {self.max_anonymous_streams} anonymous"
            )


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string: ``ipv4:10.0.0.5:41234`` → ``10.0.0.5``,
    ``ipv6:%5B::1%5D:41234`` (gRPC percent-encodes the brackets) → ``::1``; ``unix:…`` and
    anything unknown → its scheme."""
    scheme, _, rest = urllib.parse.unquote(peer).partition(":")
    if scheme == "ipv4":
        return rest.rpartition(":")[0] or rest
    if scheme == "ipv6":
        host = rest.rpartition(":")[0] if rest.startswith("[") else rest
        return host.strip("[]")
    return scheme


class StreamSlots:
    """Counts open streams; :meth:`take` says why a new one is refused, or takes its slot."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._open = Counter({False: 0, True: 0})  # by anonymous
        self._by_peer: Counter[str] = Counter()

    def take(self, peer: str, *, anonymous: bool = False) -> str | None:
        """Take a slot for ``peer`` (see :func:`peer_host`); the refusal's reason when full.
        ``anonymous``: a method that needs no token, counted against its own cap."""
        open_now = self._open[anonymous]
        if anonymous and open_now >= self.limits.max_anonymous_streams:
            return (
                f"the server has {open_now} streams open to callers without a token, its limit "
                f"(--max-anonymous-streams {self.limits.max_anonymous_streams})"
            )
        if not anonymous and open_now >= self.limits.max_streams:
            return f"the server has {open_now} streams open, its limit (--max-streams {self.limits.max_streams})"
        if self._by_peer[peer] >= self.limits.max_streams_per_peer:
            return (
                f"{peer} has {self._by_peer[peer]} streams open, the limit per address "
                f"(--max-streams-per-peer {self.limits.max_streams_per_peer})"
            )
        self._open[anonymous] += 1
        self._by_peer[peer] += 1
        return None

    def give_back(self, peer: str, *, anonymous: bool = False) -> None:
        self._open[anonymous] -= 1
        self._by_peer[peer] -= 1
        if self._by_peer[peer] <= 0:
            del self._by_peer[peer]

    @property
    def open(self) -> int:
        return self._open.total()


async def _within(awaitable: Awaitable[_T], seconds: float) -> _T:
    """``awaitable``'s result, or :class:`asyncio.TimeoutError` after ``seconds``. On Python 3.11+
    a cancel scope on the running task (``asyncio.timeout``); ``asyncio.wait_for`` makes a task for
    every awaited message, a cost a 4K frame's ~35 chunks each way would pay."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


async def idle_guarded(messages: AsyncIterator[_T], seconds: float) -> AsyncIterator[_T]:
    """``messages``, raising :class:`DeadlineError` when the next one takes over ``seconds``."""
    iterator = aiter(messages)
    received = 0
    while True:
        try:
            message = await _within(anext(iterator), seconds)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            what = "its first message" if received == 0 else f"a message after {received}"
            raise DeadlineError(
                f"the stream sent nothing for {seconds:g} s, waiting for {what} (the server's --idle-timeout)"
            ) from None
        received += 1
        yield message
