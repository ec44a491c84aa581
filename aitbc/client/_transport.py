"""The transport interface: how a client reaches the coordinator, one call at a time, by method descriptor.

As httpx separates its client from its transports, `Client` and `AsyncClient` hold the API (arguments,
models, retries, resuming a stream) and a transport moves protobuf messages: `_grpc_transport` over a
gRPC channel, `_http_transport` over the gateway's REST routes and Server-Sent Events. A transport raises
nothing but `AitbcApiError`, with the same code and reason for the same failure on either wire.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Generator
from typing import TypeVar

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


class Transport(abc.ABC):
    """The blocking client's wire."""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """Where calls go: "HOST:PORT" for gRPC, the base URL for HTTP."""

    @abc.abstractmethod
    def unary(self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None) -> M:
        """Call `method` and return its response, within `timeout_s` seconds (None: no limit)."""

    @abc.abstractmethod
    def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> Generator[M, None, None]:
        """The responses of a server-streaming `method`; closing the generator ends the call."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; calls in flight are cancelled."""


class AsyncTransport(abc.ABC):
    """The asyncio client's wire."""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """Where calls go: "HOST:PORT" for gRPC, the base URL for HTTP."""

    @abc.abstractmethod
    async def unary(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> M:
        """Call `method` and return its response, within `timeout_s` seconds (None: no limit)."""

    @abc.abstractmethod
    def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> AsyncGenerator[M, None]:
        """The responses of a server-streaming `method`; closing the generator ends the call."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection; calls in flight are cancelled."""
