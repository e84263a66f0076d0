"""Checks that apply to every call, in one place: the bearer token and error translation.

* Every method except ``grpc.health.v1.Health`` needs ``authorization: Bearer <token>`` when the
  server has a token; the comparison is constant-time.
* A :class:`PlateforgeError` raised by a handler becomes its ``grpc_code`` with the error's
  message, and the class name travels in trailing metadata (``plateforge-error``) so the client
  re-raises the same class. Anything else becomes INTERNAL with a short message; the traceback
  goes to the server log, never to the user.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc

from plateforge.errors import ERROR_CLASS_KEY, PlateforgeError

__all__ = ["ServerInterceptor"]

log = logging.getLogger("plateforge.server")

_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def _abort(context: grpc.ServicerContext, error: BaseException) -> None:
    if isinstance(error, PlateforgeError):
        code = getattr(grpc.StatusCode, error.grpc_code)
        context.set_trailing_metadata(((ERROR_CLASS_KEY, type(error).__name__),))
        context.abort(code, str(error))
    log.exception("unexpected error in a handler")
    context.abort(grpc.StatusCode.INTERNAL, f"internal server error: {type(error).__name__}: {error}")


def _wrap_unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behaviour(request, context)
        except Exception as error:  # translated at the edge, by design
            if _status_already_set(context):
                raise
            if _caller_gone(context, error):
                return None
            _abort(context, error)

    return handler


def _wrap_stream(behaviour: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behaviour(request, context)
        except Exception as error:
            if _status_already_set(context):
                raise
            if _caller_gone(context, error):
                return
            _abort(context, error)

    return handler


def _caller_gone(context: grpc.ServicerContext, error: Exception) -> bool:
    """True when the call failed because its caller cancelled or disconnected (a client killed
    mid-stream): nobody is left to tell, and it is no bug.

    gRPC keeps the error it raised into the handler in the call's state, and the error's
    traceback holds the handler's frames: the pixels it had gathered so far. Dropping the
    traceback gives their memory back now instead of whenever gRPC lets go of the call."""
    if context.is_active():
        return False
    log.info("a call ended because its caller went away (%s)", type(error).__name__)
    error.__traceback__ = None
    return True


def _status_already_set(context: grpc.ServicerContext) -> bool:
    # context.abort() records its status and raises a bare Exception: let that through untouched.
    return cast(Any, context).code() is not None  # code() is missing from grpc-stubs


class ServerInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str | None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if self._expected is not None and not method.startswith(_OPEN_PREFIXES):
            given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
            given_bytes = given.encode() if isinstance(given, str) else given
            if not hmac.compare_digest(given_bytes, self._expected):
                reason = "missing token" if not given else "wrong token"
                return _denial_like(handler, f"{reason}: send 'authorization: Bearer <token>' metadata")
        return _wrapped_like(handler)


def _wrapped_like(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        _wrap_stream(handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )


def _denial_like(handler: grpc.RpcMethodHandler[Any, Any], message: str) -> grpc.RpcMethodHandler[Any, Any]:
    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.set_trailing_metadata(((ERROR_CLASS_KEY, "AuthError"),))
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.set_trailing_metadata(((ERROR_CLASS_KEY, "AuthError"),))
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield from ()

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream, des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, des, ser)
    return grpc.stream_stream_rpc_method_handler(stream, des, ser)
