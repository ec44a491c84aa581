"""`AITBCClient` and how it reads an `api_url`; `aitbc_sdk` re-exports them."""

from __future__ import annotations

import grpc

from aitbc.client import Client
from aitbc.client._endpoint import Endpoint, parse_endpoint


def parse_api_url(api_url: str) -> Endpoint:
    """Where `api_url` points: `.transport` ("grpc" or "http"), `.address` and `.tls`.

    "http://..." and "https://..." name the HTTP gateway: `.address` is the base URL, path included.
    "HOST[:PORT]" and "grpc://HOST[:PORT]" name the coordinator's gRPC endpoint in plaintext (default
    port 50051), "grpcs://HOST[:PORT]" with TLS (default port 443); `.address` is "HOST:PORT".
    """
    return parse_endpoint(api_url)


class AITBCClient(Client):
    """`Client` constructed the seed's way, from an `api_url` (see `parse_api_url`) and an `api_key`.

    `submit_job` returns a job with `.id` and `.status`; `wait_for_job(job_id, timeout=60)` one with `.output`.
    Without `api_url` the coordinator address comes from `$AITBC_COORDINATOR`, else 127.0.0.1:50051.
    """

    def __init__(
        self, api_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0, max_retries: int = 3
    ) -> None:
        if api_url is None:
            super().__init__(None, api_key, timeout=timeout, max_retries=max_retries)
            return
        endpoint = parse_api_url(api_url)
        credentials = grpc.ssl_channel_credentials() if endpoint.transport == "grpc" and endpoint.tls else None
        super().__init__(endpoint.address, api_key, timeout=timeout, credentials=credentials, max_retries=max_retries)
