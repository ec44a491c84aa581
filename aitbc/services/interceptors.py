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

from aitbc.api_descriptors import keyless_paths
from aitbc.config import API_KEY_METADATA
from aitbc.coordinator.auth import Authenticator
from aitbc.coordinator.store_health import StoreUnavailable
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.keys import Principal
from aitbc.services.errors import internal_status, rich_status
from aitbc.services.rpc_context import HANDLER_KINDS
from aitbc.store.base import StoreUnavailableError

log = logging.getLogger(__name__)

# grpc.aio runs each RPC in a task of its own, so a value set here is seen by
# that RPC's handler (and tasks it starts) and by nothing else.
# Strings: grpc's classes are generic only in the type stubs.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("aitbc_principal")

PROTECTED_PREFIX = "/aitbc.v1."


def current_principal() -> Principal:
    return _principal.get()


def _api_key(context: Context) -> str | None:
    """`x-api-key: KEY`, else the standard `authorization: Bearer KEY` that gRPC clients in any language send."""
    bearer = None
    for key, value in context.invocation_metadata() or ():
        if key == API_KEY_METADATA:
            return str(value)
        if key == "authorization":
            scheme, _, credentials = str(value).partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                bearer = credentials.strip()
    return bearer


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
        method = handler_call_details.method
        if handler is None or not method.startswith(PROTECTED_PREFIX):
            return handler
        attribute, factory = HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
        behavior: Any = getattr(handler, attribute)
        decode = _decoder(handler.request_deserializer, method)
        decoding = _decode_stream(decode) if handler.request_streaming else decode
        wrap: Callable[[Any, Callable[[Any], Any]], Callable[..., Any]]
        if method in keyless_paths():
            wrap = self._wrap_keyless
        else:
            wrap = self._wrap_streaming if handler.response_streaming else self._wrap_unary
        # Requests arrive as bytes and are decoded inside the call, so that bytes that are no valid
        # message get INVALID_ARGUMENT, where grpc's own deserializer would answer UNKNOWN.
        return factory(
            wrap(behavior, decoding), request_deserializer=None, response_serializer=handler.response_serializer
        )

    def _wrap_unary(
        self, behavior: Callable[[Any, Context], Awaitable[Any]], decode: Callable[[Any], Any]
    ) -> Callable[..., Any]:
        async def unary(request: Any, context: Context) -> Any:
            async with self._authenticated_call(context, behavior):
                return await behavior(decode(request), context)

        return unary

    def _wrap_keyless(
        self, behavior: Callable[[Any, Context], Awaitable[Any]], decode: Callable[[Any], Any]
    ) -> Callable[..., Any]:
        """A public method: no key is asked for or checked (one sent anyway is ignored), and no principal is set,
        so its servicer cannot reach for an account. Keyless methods are unary reads."""

        async def keyless(request: Any, context: Context) -> Any:
            async with self._errors_mapped(context, behavior):
                return await behavior(decode(request), context)

        return keyless

    def _wrap_streaming(
        self, behavior: Callable[[Any, Context], AsyncIterator[Any]], decode: Callable[[Any], Any]
    ) -> Callable[..., Any]:
        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with self._authenticated_call(context, behavior):
                responses = behavior(decode(request), context)
                async for response in _until_revoked(self._auth, current_principal(), responses):
                    yield response

        return streaming

    @contextlib.asynccontextmanager
    async def _authenticated_call(self, context: Context, behavior: object) -> AsyncIterator[None]:
        """Authenticate the caller for the body; turn what it raises into the matching rich status."""
        async with self._errors_mapped(context, behavior):
            _principal.set(await self._auth.authenticate(_api_key(context)))
            yield

    @contextlib.asynccontextmanager
    async def _errors_mapped(self, context: Context, behavior: object) -> AsyncIterator[None]:
        """Turn what the body raises into the matching rich status."""
        try:
            yield
        except AitbcError as error:
            await _abort(context, rich_status(error))
        except StoreUnavailableError as error:
            # A read the store could not serve; writes are reported by the coordinator's store health.
            await _abort(context, rich_status(StoreUnavailable(str(error))))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error in %s", behavior)
            await _abort(context, internal_status())


def _decoder(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[Any], Any]:
    def decode(raw: Any) -> Any:
        if deserialize is None:
            return raw
        try:
            return deserialize(raw)
        except Exception:
            raise AitbcError(
                Reason.INVALID_ARGUMENT, f"the request bytes are not a valid message for {method}"
            ) from None

    return decode


def _decode_stream(decode: Callable[[Any], Any]) -> Callable[[AsyncIterator[Any]], AsyncIterator[Any]]:
    async def decoded(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for raw in requests:
            yield decode(raw)

    return decoded


# What the pump hands the stream: a response, the end, the servicer's error, or the key's revocation.
_Item: TypeAlias = tuple[str, Any]
_REVOKED: _Item = ("revoked", None)


async def _until_revoked(
    auth: Authenticator, principal: Principal, responses: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    """`responses` until the stream's key is revoked; then the servicer is cancelled and UNAUTHENTICATED raised.

    A pump task runs the servicer's generator into a one-slot queue; revoking the key cancels the pump and
    puts the revocation in the queue. So a stream waiting for its next message (an idle watch, a miner between
    jobs) ends at once, and each message costs a queue hand-over, not a task. The pump copies the call's
    context, principal included.
    """
    queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=1)
    pump = asyncio.create_task(_pump(responses, queue), name="stream pump")

    def revoke() -> None:
        pump.cancel()
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_REVOKED)

    try:
        # Registered with no await since the key was checked: a revocation cannot slip in between.
        with auth.stream_of(principal, revoke):
            while True:
                kind, value = await queue.get()
                if kind == "next":
                    yield value
                elif kind == "end":
                    return
                elif kind == "error":
                    raise value
                else:
                    raise AitbcError(Reason.UNAUTHENTICATED, "the API key was revoked")
    finally:
        if not pump.done():
            pump.cancel()
        # The servicer runs its own cleanup (a miner's jobs are requeued) as it is cancelled.
        await asyncio.wait({pump})
        if not pump.cancelled():
            pump.exception()  # retrieved, so asyncio does not log what matters no more


async def _pump(responses: AsyncIterator[Any], queue: asyncio.Queue[_Item]) -> None:
    try:
        async for response in responses:
            await queue.put(("next", response))
    except Exception as error:
        await queue.put(("error", error))
    else:
        await queue.put(("end", None))
