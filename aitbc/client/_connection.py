"""A client's settings, resolved once, and the transport they call for."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from aitbc import config
from aitbc.client._endpoint import Endpoint, client_endpoint
from aitbc.client._grpc_transport import AsyncGrpcTransport, GrpcTransport
from aitbc.client._transport import AsyncTransport, Transport


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to call and with which key; `timeout` bounds each unary call in seconds."""

    endpoint: Endpoint
    api_key: str | None
    timeout: float
    credentials: grpc.ChannelCredentials | None

    @classmethod
    def resolve(
        cls, target: str | None, api_key: str | None, timeout: float, credentials: grpc.ChannelCredentials | None
    ) -> Connection:
        """Fill the target and key from the environment and `~/.aitbc`, as the CLI does."""
        endpoint = client_endpoint(config.coordinator_address(target))
        if endpoint.transport == "http" and credentials is not None:
            raise ValueError(f"credentials are for gRPC targets; {endpoint.address} is an HTTP gateway")
        if endpoint.tls and credentials is None:
            credentials = grpc.ssl_channel_credentials()
        return cls(endpoint, config.api_key(api_key), timeout, credentials)

    def open(self) -> Transport:
        if self.endpoint.transport == "http":
            # Here rather than at the top: only HTTP users load httpx.
            from aitbc.client._http_transport import HttpTransport

            return HttpTransport(self.endpoint.address, self.api_key, self.timeout)
        return GrpcTransport(self.endpoint.address, self.api_key, self.credentials)

    def open_async(self) -> AsyncTransport:
        if self.endpoint.transport == "http":
            from aitbc.client._http_transport import AsyncHttpTransport

            return AsyncHttpTransport(self.endpoint.address, self.api_key, self.timeout)
        return AsyncGrpcTransport(self.endpoint.address, self.api_key, self.credentials)
