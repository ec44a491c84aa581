"""The transports over a gRPC channel, blocking and asyncio."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from aitbc import config
from aitbc.client._transport import AsyncTransport, M, Transport
from aitbc.client.errors import translate_rpc_errors
from aitbc.targets import channel_target


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return ((config.API_KEY_METADATA, api_key),) if api_key else ()


class GrpcTransport(Transport):
    """A blocking channel to `target`; TLS with `credentials`."""

    def __init__(self, target: str, api_key: str | None, credentials: grpc.ChannelCredentials | None) -> None:
        self._target = target
        self._metadata = _metadata(api_key)
        listed, options = channel_target(target)  # replicas: a:1,b:2 (docs/scaling.md)
        options = [*config.KEEPALIVE_OPTIONS, *options]
        if credentials is None:
            self._channel = grpc.insecure_channel(listed, options=options)
        else:
            self._channel = grpc.secure_channel(listed, credentials, options=options)

    @property
    def target(self) -> str:
        return self._target

    def unary(self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None) -> M:
        call = self._channel.unary_unary(
            _path(method), request_serializer=_serialize, response_deserializer=response_type.FromString
        )
        with translate_rpc_errors():
            response: M = call(request, metadata=self._metadata, timeout=timeout_s)
        return response

    def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> Generator[M, None, None]:
        call = self._channel.unary_stream(
            _path(method), request_serializer=_serialize, response_deserializer=response_type.FromString
        )(request, metadata=self._metadata, timeout=timeout_s)
        try:
            with translate_rpc_errors():
                yield from call
        finally:
            # Ends the RPC when the reader stops early.
            call.cancel()

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport(AsyncTransport):
    """A grpc.aio channel to `target`; TLS with `credentials`."""

    def __init__(self, target: str, api_key: str | None, credentials: grpc.ChannelCredentials | None) -> None:
        self._target = target
        self._metadata = _metadata(api_key)
        listed, options = channel_target(target)  # replicas: a:1,b:2 (docs/scaling.md)
        options = [*config.KEEPALIVE_OPTIONS, *options]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(listed, options=options)
        else:
            self._channel = grpc.aio.secure_channel(listed, credentials, options=options)

    @property
    def target(self) -> str:
        return self._target

    async def unary(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> M:
        call = self._channel.unary_unary(
            _path(method), request_serializer=_serialize, response_deserializer=response_type.FromString
        )
        with translate_rpc_errors():
            response: M = await call(request, metadata=self._metadata, timeout=timeout_s)
        return response

    async def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> AsyncGenerator[M, None]:
        call = self._channel.unary_stream(
            _path(method), request_serializer=_serialize, response_deserializer=response_type.FromString
        )(request, metadata=self._metadata, timeout=timeout_s)
        try:
            with translate_rpc_errors():
                async for response in call:
                    yield response
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()
