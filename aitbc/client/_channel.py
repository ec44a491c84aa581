"""Connection settings both clients resolve the same way: target, API key, timeout, transport security."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import grpc

from aitbc import config


class CallOptions(TypedDict):
    """The keyword arguments every RPC of a client gets."""

    metadata: tuple[tuple[str, str], ...]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Where and how to call the coordinator; `metadata` carries the API key on every call."""

    target: str
    metadata: tuple[tuple[str, str], ...]
    timeout: float
    credentials: grpc.ChannelCredentials | None

    @classmethod
    def resolve(
        cls,
        target: str | None,
        api_key: str | None,
        timeout: float,
        credentials: grpc.ChannelCredentials | None,
    ) -> ChannelSettings:
        """Fill the target and key from the environment and `~/.aitbc`, as the CLI does."""
        key = config.api_key(api_key)
        metadata = ((config.API_KEY_METADATA, key),) if key else ()
        return cls(config.coordinator_address(target), metadata, timeout, credentials)

    def call_options(self, timeout: float | None) -> CallOptions:
        """The API key and a deadline `timeout` seconds away (none if `None`)."""
        return {"metadata": self.metadata, "timeout": timeout}

    @property
    def unary_options(self) -> CallOptions:
        """`call_options` with the client's per-call timeout."""
        return self.call_options(self.timeout)

    def open_channel(self) -> grpc.Channel:
        """A blocking channel to the target."""
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=config.KEEPALIVE_OPTIONS)
        return grpc.secure_channel(self.target, self.credentials, options=config.KEEPALIVE_OPTIONS)

    def open_aio_channel(self) -> grpc.aio.Channel:
        """An asyncio channel to the target."""
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=config.KEEPALIVE_OPTIONS)
        return grpc.aio.secure_channel(self.target, self.credentials, options=config.KEEPALIVE_OPTIONS)
