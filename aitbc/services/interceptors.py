"""One interceptor for every aitbc.v1 method: authenticate, then map errors.

Servicers read the caller with `current_principal()` and raise `AitbcError`;
they never touch metadata or statuses themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import grpc.aio

from aitbc.config import API_KEY_METADATA
from aitbc.coordinator.auth import Authenticator
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.keys import Principal
from aitbc.services.errors import internal_status, rich_status

log = logging.getLogger(__name__)

# grpc.aio runs each RPC in a task of its own, so a value set here is seen by
# that RPC's handler (and tasks it starts) and by nothing else.
# Strings: grpc's classes are generic only in the type stubs.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("aitbc_principal")

PROTECTED_PREFIX = "/aitbc.v1."

# (request streaming, response streaming) -> the handler attribute and its factory.
_HANDLER_KINDS: dict[tuple[bool, bool], tuple[str, Callable[..., Handler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def current_principal() -> Principal:
    return _principal.get()


def _api_key(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == API_KEY_METADATA:
            return str(value)
    return None


async def _abort(context: Context, status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)


class AuthAndErrorsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(PROTECTED_PREFIX):
            return handler
        attribute, factory = _HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
        behavior: Any = getattr(handler, attribute)
        wrap = self._wrap_streaming if handler.response_streaming else self._wrap_unary
        return factory(
            wrap(behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(self, behavior: Callable[[Any, Context], Awaitable[Any]]) -> Callable[..., Any]:
        async def unary(request: Any, context: Context) -> Any:
            async with self._authenticated_call(context, behavior):
                return await behavior(request, context)

        return unary

    def _wrap_streaming(self, behavior: Callable[[Any, Context], AsyncIterator[Any]]) -> Callable[..., Any]:
        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with self._authenticated_call(context, behavior):
                # Registered right after authenticating, with no await between: a revocation cannot slip past.
                with self._auth.stream_of(current_principal()) as revoked:
                    async for response in _until_revoked(behavior(request, context), revoked):
                        yield response

        return streaming

    @contextlib.asynccontextmanager
    async def _authenticated_call(self, context: Context, behavior: object) -> AsyncIterator[None]:
        """Authenticate the caller for the body; turn what it raises into the matching rich status."""
        try:
            _principal.set(await self._auth.authenticate(_api_key(context)))
            yield
        except AitbcError as error:
            await _abort(context, rich_status(error))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error in %s", behavior)
            await _abort(context, internal_status())


async def _until_revoked(responses: AsyncIterator[Any], revoked: asyncio.Event) -> AsyncIterator[Any]:
    """`responses` until the stream's key is revoked; then the servicer is cancelled and UNAUTHENTICATED raised.

    Each step runs in a task of its own so that a revocation interrupts a stream that waits for its next
    message (an idle watch, a miner between jobs) at once. The tasks copy the call's context, principal included.
    """
    iterator = aiter(responses)
    revocation = asyncio.ensure_future(revoked.wait())
    step: asyncio.Future[Any] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, revocation}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                raise AitbcError(Reason.UNAUTHENTICATED, "the API key was revoked")
            try:
                response = step.result()
            except StopAsyncIteration:
                return
            yield response
    finally:
        revocation.cancel()
        if step is not None and not step.done():
            # The servicer runs its own cleanup (a miner's jobs are requeued) as it is cancelled.
            step.cancel()
            await asyncio.wait({step})
            if not step.cancelled():
                step.exception()  # retrieved: the servicer's own failure while stopping matters no more
        # An async generator left at a yield is otherwise closed only by garbage collection.
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
