"""Checks that apply to every call, in one place: the token, stream caps, idle deadlines, errors.

* Every method except ``grpc.health.v1.Health`` needs ``authorization: Bearer <token>`` when the
  server has a token; the comparison is constant-time. The token is checked before the method
  is looked up, so a caller without it learns nothing, not even which methods exist: every
  method, known or not, answers UNAUTHENTICATED.
* Streaming calls take a slot (:mod:`plateforge_server.limits`): past the caps, per peer or in
  all (callers without the token have a cap of their own), RESOURCE_EXHAUSTED. A client stream
  that sends nothing for the idle timeout ends with DEADLINE_EXCEEDED.
* Text fields of a request may not hold NUL bytes (:mod:`plateforge_server.fields`).
* A :class:`PlateforgeError` raised by a handler becomes its ``grpc_code`` with the error's
  message, and the class name travels in trailing metadata (``plateforge-error``) so the client
  re-raises the same class. Anything else becomes INTERNAL with a short message; the traceback
  goes to the server log, never to the user. Every message is cut to :data:`MAX_DETAILS`
  characters, since many echo what the caller sent.

Handlers may be coroutines (async generators for streamed responses), which run on the event
loop, or plain functions, which run on the ``blocking`` executor so that they never stall it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, NoReturn, TypeAlias, cast

import grpc
from google.protobuf.message import Message
from grpc import aio

from plateforge.errors import ERROR_CLASS_KEY, PlateforgeError
from plateforge_server.fields import check_text_fields
from plateforge_server.limits import StreamLimits, StreamSlots, idle_guarded, peer_host

__all__ = ["MAX_DETAILS", "ServerInterceptor", "bounded", "when_done"]

log = logging.getLogger("plateforge_server")

_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)

#: The most characters of an error message sent back; the rest is counted, not sent.
MAX_DETAILS = 2000

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def when_done(context: aio.ServicerContext[Any, Any], action: Callable[[], None]) -> None:
    """Run ``action`` when the call ends for any reason: finished, cancelled, past its deadline,
    or its caller gone. This is how a call's end reaches work running on another thread."""
    context.add_done_callback(cast("aio.DoneCallback[Any, Any]", lambda _: action()))


def bounded(message: str, limit: int = MAX_DETAILS) -> str:
    """``message`` cut to ``limit`` characters, saying how many were left out."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message) - limit} more characters)"


async def _fail(context: aio.ServicerContext[Any, Any], error: BaseException) -> NoReturn:
    if isinstance(error, PlateforgeError):
        context.set_trailing_metadata(((ERROR_CLASS_KEY, type(error).__name__),))
        await context.abort(getattr(grpc.StatusCode, error.grpc_code), bounded(str(error)))
    log.error("unexpected error in a handler", exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, bounded(f"internal server error: {type(error).__name__}: {error}"))
    raise AssertionError("unreachable: abort raises")


def _caller_gone(context: aio.ServicerContext[Any, Any], error: Exception) -> bool:
    """True when the call failed because its caller cancelled or disconnected (a client killed
    mid-stream): nobody is left to tell, and it is no bug. The error's traceback holds the
    handler's frames (the pixels it had gathered): dropping it gives their memory back now."""
    if not (context.cancelled() or context.done()):
        return False
    log.info("a call ended because its caller went away (%s)", type(error).__name__)
    error.__traceback__ = None
    return True


class ServerInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str | None, *, limits: StreamLimits, blocking: Executor) -> None:
        self._expected = f"Bearer {token}".encode() if token else None
        self._slots = StreamSlots(limits)
        self._blocking = blocking

    async def intercept_service(  # type: ignore[override]  # None: no such method (UNIMPLEMENTED)
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        if self._expected is not None and not method.startswith(_OPEN_PREFIXES):
            given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
            given_bytes = given.encode() if isinstance(given, str) else given
            if not hmac.compare_digest(given_bytes, self._expected):
                reason = "missing token" if not given else "wrong token"
                return _denial(f"{reason}: send 'authorization: Bearer <token>' metadata")
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrapped(handler, anonymous=method.startswith(_OPEN_PREFIXES))

    def _wrapped(self, handler: Handler, *, anonymous: bool) -> Handler:
        des, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary), des, ser)
        if handler.stream_unary:
            wrapped = self._client_stream(handler.stream_unary, anonymous)
            return grpc.stream_unary_rpc_method_handler(wrapped, des, ser)
        if handler.unary_stream:
            wrapped = self._server_stream(handler.unary_stream, anonymous, streaming_in=False)
            return grpc.unary_stream_rpc_method_handler(wrapped, des, ser)
        assert handler.stream_stream is not None
        wrapped = self._server_stream(handler.stream_stream, anonymous, streaming_in=True)
        return grpc.stream_stream_rpc_method_handler(wrapped, des, ser)

    async def _call(self, behaviour: Callable[..., Any], request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        request = self._checked(request, streaming_in=False)
        if inspect.iscoroutinefunction(behaviour):
            return await behaviour(request, context)
        return await asyncio.get_running_loop().run_in_executor(self._blocking, behaviour, request, context)

    @contextlib.asynccontextmanager
    async def _edge(self, context: aio.ServicerContext[Any, Any], *, anonymous: bool | None) -> AsyncIterator[None]:
        """Where a handler's errors are translated, by design: a PlateforgeError becomes its status
        (anything else INTERNAL), a caller already gone gets nothing (the error is swallowed and the
        handler ends). With ``anonymous`` given the call is a stream: it holds one of the stream
        slots for as long as it runs (refused with RESOURCE_EXHAUSTED when none is free)."""
        peer = await self._take_slot(context, anonymous) if anonymous is not None else None
        try:
            yield
        except aio.AbortError:
            raise
        except Exception as error:
            if not _caller_gone(context, error):
                await _fail(context, error)
        finally:
            if peer is not None and anonymous is not None:
                self._slots.give_back(peer, anonymous=anonymous)

    def _unary(self, behaviour: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def handler(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with self._edge(context, anonymous=None):
                return await self._call(behaviour, request, context)
            return None  # the caller was gone

        return handler

    def _client_stream(self, behaviour: Callable[..., Any], anonymous: bool) -> Callable[..., Awaitable[Any]]:
        if not inspect.iscoroutinefunction(behaviour):
            raise TypeError(f"streaming handler {behaviour!r} must be async (a plain one would hold a thread)")

        async def handler(requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]) -> Any:
            async with self._edge(context, anonymous=anonymous):
                return await behaviour(self._checked(requests, streaming_in=True), context)
            return None  # the caller was gone

        return handler

    def _server_stream(
        self, behaviour: Callable[..., Any], anonymous: bool, *, streaming_in: bool
    ) -> Callable[..., Any]:
        """Handlers that stream replies either yield them (async generators) or write them with
        ``context.write`` (coroutines, like grpcio's asyncio health servicer); both are wrapped."""
        if inspect.isasyncgenfunction(behaviour):

            async def generator(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                async with self._edge(context, anonymous=anonymous):
                    async for response in behaviour(self._checked(request, streaming_in), context):
                        yield response

            return generator
        if not inspect.iscoroutinefunction(behaviour):
            raise TypeError(f"streaming handler {behaviour!r} must be async (a plain one would hold a thread)")

        async def writer(request: Any, context: aio.ServicerContext[Any, Any]) -> None:
            async with self._edge(context, anonymous=anonymous):
                await behaviour(self._checked(request, streaming_in), context)

        return writer

    def _checked(self, request: Any, streaming_in: bool) -> Any:
        """A request stream under the idle deadline, or one request whose text fields are checked."""
        if streaming_in:
            return idle_guarded(request, self._slots.limits.idle_timeout)
        if isinstance(request, Message):
            check_text_fields(request, type(request).__name__)
        return request

    async def _take_slot(self, context: aio.ServicerContext[Any, Any], anonymous: bool) -> str:
        peer = peer_host(context.peer() or "")
        refused = self._slots.take(peer, anonymous=anonymous)
        if refused is not None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many streams: {refused}; try again later")
        return peer


def _denial(message: str) -> Handler:
    """A handler that refuses any call, whatever its kind: on the wire every call is a stream of
    messages, so one bidirectional handler answers unary and streaming methods alike (and
    methods that do not exist, without saying so)."""

    async def deny(requests: object, context: aio.ServicerContext[Any, Any]) -> None:
        context.set_trailing_metadata(((ERROR_CLASS_KEY, "AuthError"),))
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.stream_stream_rpc_method_handler(deny)
