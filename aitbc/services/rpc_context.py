"""The outermost interceptor: each call's request id and traceparent for the logs, and its outcome and duration.

Separate from the auth interceptor (which it wraps, so refused calls are counted with their codes). It knows
no metrics library: it reports each finished call to `on_done(method, code, seconds)`, which
`aitbc.services.metrics` records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import grpc.aio

from aitbc.logs import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    request_id_var,
    traceparent_var,
    valid_request_id,
    valid_traceparent,
)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
CallDone = Callable[[str, str, float], None]

# (request streaming, response streaming) -> the handler attribute and its factory: how an interceptor
# rewraps a handler of any kind (the auth interceptor uses it too).
HANDLER_KINDS: dict[tuple[bool, bool], tuple[str, Callable[..., Handler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _bind_request(context: Context) -> None:
    """Set the call's request id and traceparent (from its metadata) for everything the call logs."""
    request_id = traceparent = None
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER:
            request_id = valid_request_id(str(value))
        elif key == TRACEPARENT_HEADER:
            traceparent = valid_traceparent(str(value))
    # grpc.aio runs each call in a task of its own: these values end with the call.
    request_id_var.set(request_id or "")
    traceparent_var.set(traceparent or "")


def _code_of(context: Context, error: BaseException | None) -> str:
    """The status the call ended with: what it aborted with, else OK, CANCELLED (the caller left) or UNKNOWN."""
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    for status in grpc.StatusCode:
        # Some grpc versions keep the raw integer.
        if code is not None and status.value[0] == code:
            return str(status.name)
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"


class RequestContextInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, on_done: CallDone | None = None) -> None:
        self._on_done = on_done

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        attribute, factory = HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
        behavior: Any = getattr(handler, attribute)
        wrap = self._wrap_streaming if handler.response_streaming else self._wrap_unary
        return factory(
            wrap(method, behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _finish(self, method: str, context: Context, started: float, error: BaseException | None) -> None:
        if self._on_done is not None:
            self._on_done(method, _code_of(context, error), time.perf_counter() - started)

    def _wrap_unary(self, method: str, behavior: Callable[[Any, Context], Awaitable[Any]]) -> Callable[..., Any]:
        async def unary(request: Any, context: Context) -> Any:
            _bind_request(context)
            started = time.perf_counter()
            try:
                response = await behavior(request, context)
            except BaseException as error:
                self._finish(method, context, started, error)
                raise
            self._finish(method, context, started, None)
            return response

        return unary

    def _wrap_streaming(
        self, method: str, behavior: Callable[[Any, Context], AsyncIterator[Any]]
    ) -> Callable[..., Any]:
        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            _bind_request(context)
            started = time.perf_counter()
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as error:
                self._finish(method, context, started, error)
                raise
            self._finish(method, context, started, None)

        return streaming
