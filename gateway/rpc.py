"""Calling the coordinator: any method, by descriptor, over the gateway's one channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final, Generic, TypeVar

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.datastructures import Headers

from aitbc.api_descriptors import is_keyless
from aitbc.config import API_KEY_METADATA, KEEPALIVE_OPTIONS
from aitbc.logs import request_metadata
from aitbc.services.readiness import miners_service
from aitbc.tls import ClientTls, aio_channel
from gateway.errors import from_rpc_error, invalid_argument, unauthenticated

M = TypeVar("M", bound=Message)

# Unary calls are quick except CancelJob, which waits for the miner's
# acknowledgement for a few seconds; a coordinator that takes longer than
# this is stuck, and the client gets a 504 instead of waiting forever.
UNARY_TIMEOUT = 30.0
HEALTH_TIMEOUT = 2.0
MISSING_KEY = "an API key is required: send it in the X-Api-Key header, or as Authorization: Bearer KEY"

# The keys the coordinator mints are 55 characters. A longer string is not a
# key, and one past gRPC's 16 KiB metadata limit would fail the call as
# RESOURCE_EXHAUSTED, a 429 inviting the client to retry the same key.
MAX_API_KEY_LENGTH: Final = 512


# Response metadata a unary call may set that the gateway sends on as an HTTP header (a download's file name).
FORWARDED_HEADERS: Final = ("content-disposition",)


def api_key_from_headers(headers: Headers) -> str | None:
    """`X-Api-Key: KEY`, else `Authorization: Bearer KEY` (what OpenAI clients send)."""
    if key := headers.get("x-api-key"):
        return key
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def check_api_key(key: str) -> str:
    """`key` if it could be a key at all, else 401 without asking the coordinator.

    gRPC sends metadata values only as printable ASCII; anything else fails
    the call before it leaves the gateway (as INTERNAL, which would be a 500).
    """
    if len(key) > MAX_API_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise unauthenticated(f"the API key is not valid: a key is printable ASCII, at most {MAX_API_KEY_LENGTH} long")
    return key


def require_api_key(headers: Headers) -> str:
    """The request's key, else 401: every API route needs one, so this comes first, before the
    request's body is read. The gateway checks its shape; the coordinator decides whether it is valid."""
    key = api_key_from_headers(headers)
    if key is None:
        raise unauthenticated(MISSING_KEY)
    return check_api_key(key)


# grpc-gateway's header for a call's deadline, in gRPC's format: up to 8 digits and a unit.
TIMEOUT_HEADER: Final = "grpc-timeout"
_TIMEOUT_UNITS: Final = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def timeout_from_headers(headers: Headers) -> float | None:
    """The deadline a `Grpc-Timeout` header asks for, in seconds; None without one, 400 for a bad one."""
    value = headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 8 and unit in _TIMEOUT_UNITS):
        raise invalid_argument(
            f"Grpc-Timeout must be 1 to 8 digits and a unit (H, M, S, m, u, n), got {value[:20]!r}", TIMEOUT_HEADER
        )
    return int(digits) * _TIMEOUT_UNITS[unit]


def _metadata(method: MethodDescriptor, api_key: str | None) -> tuple[tuple[str, str], ...]:
    if is_keyless(method):
        return ()
    if not api_key:
        # Every other aitbc.v1 call needs a key; said here in HTTP's terms (the coordinator's words name gRPC
        # metadata).
        raise unauthenticated(MISSING_KEY)
    # The request's id and traceparent travel with each call, so the coordinator's log lines name them too.
    return ((API_KEY_METADATA, api_key), *request_metadata())


def _rpc_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


class MessageStream(Generic[M]):
    """A server-streaming call whose first message (or end) has already arrived, or is still awaited.

    Reading ahead makes an error that comes at once (unknown job, bad key) an
    exception of `open_stream`, raised before any HTTP response has started.
    Errors after that come out of the iteration as GatewayError.
    """

    def __init__(
        self, call: grpc.aio.UnaryStreamCall[Message, M], messages: AsyncIterator[M], first: asyncio.Future[M | None]
    ) -> None:
        self._call = call
        self._messages = messages
        self._first = first

    @property
    def first(self) -> M | None:
        """The first message, once it has arrived (always, unless opened with `first_within`); else None."""
        if not self._first.done() or self._first.cancelled():
            return None
        return self._first.result()

    @property
    def empty(self) -> bool:
        """Whether the call has ended without a single message."""
        return self._first.done() and not self._first.cancelled() and self._first.result() is None

    def cancel(self) -> None:
        """End the call, whether or not anyone started reading it."""
        self._first.cancel()
        self._call.cancel()

    async def __aiter__(self) -> AsyncIterator[M]:
        try:
            first = await self._first
            if first is None:
                return
            yield first
            async for message in self._messages:
                yield message
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            # Ends the RPC when the reader stops early (client gone, unsubscribed).
            self._first.cancel()
            self._call.cancel()


class CoordinatorClient:
    """The gateway's channel to the coordinator, opened in the app's lifespan."""

    def __init__(self, target: str, tls: ClientTls | None = None) -> None:
        self._target = target
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        # Balanced: with replicas listed (docs/scaling.md), calls spread over them and skip one that is gone.
        self._channel = aio_channel(self._target, self._tls, KEEPALIVE_OPTIONS, balanced=True)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            raise RuntimeError("the coordinator channel is not open: run the app with its lifespan")
        return self._channel

    async def unary(
        self,
        method: MethodDescriptor,
        request: Message,
        response_type: type[M],
        api_key: str | None,
        timeout_s: float | None = None,
    ) -> M:
        """Call `method`; within `timeout_s` seconds where the client asked for less than UNARY_TIMEOUT."""
        response, _ = await self.unary_with_headers(method, request, response_type, api_key, timeout_s)
        return response

    async def unary_with_headers(
        self,
        method: MethodDescriptor,
        request: Message,
        response_type: type[M],
        api_key: str | None,
        timeout_s: float | None = None,
    ) -> tuple[M, dict[str, str]]:
        """`unary`, and the response metadata in FORWARDED_HEADERS, as HTTP headers."""
        timeout = UNARY_TIMEOUT if timeout_s is None else min(timeout_s, UNARY_TIMEOUT)
        multicallable = self.channel.unary_unary(
            _rpc_path(method),
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            call = multicallable(request, metadata=_metadata(method, api_key), timeout=timeout)
            response = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        headers = {key: str(value) for key, value in metadata or () if key in FORWARDED_HEADERS}
        return response, headers

    async def open_stream(
        self,
        method: MethodDescriptor,
        request: Message,
        response_type: type[M],
        api_key: str | None,
        timeout_s: float | None = None,
        *,
        first_within: float | None = None,
    ) -> MessageStream[M]:
        """Start a server-streaming call, ending with DEADLINE_EXCEEDED after `timeout_s` seconds if given.

        Waits for the first message, so that an immediate error is raised here, but at most
        `first_within` seconds if given: a stream resumed past its last event may wait for minutes,
        and its HTTP response must start (and keep alive) meanwhile.
        """
        call = self.channel.unary_stream(
            _rpc_path(method),
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )(request, metadata=_metadata(method, api_key), timeout=timeout_s)
        messages = aiter(call)
        first: asyncio.Future[M | None] = asyncio.ensure_future(anext(messages, None))
        try:
            await asyncio.wait((first,), timeout=first_within)
            if first.done():
                first.result()
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        except BaseException:
            first.cancel()
            call.cancel()
            raise
        return MessageStream(call, messages, first)

    async def serving(self, service: str = "") -> tuple[bool, str]:
        """Whether the coordinator's grpc.health.v1 check of `service` (the whole server by default) says
        SERVING, and its status in words."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=HEALTH_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return False, f"unreachable: {error.code().name}"
        status_name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return response.status == health_pb2.HealthCheckResponse.SERVING, status_name.lower()

    async def enough_miners(self, minimum: int) -> tuple[bool, str]:
        """Whether at least `minimum` miners are online and taking jobs (the coordinator's `aitbc.miners/N`)."""
        return await self.serving(miners_service(minimum))
