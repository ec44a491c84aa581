"""`AITBCClient` and how it reads an `api_url`; `aitbc_sdk` re-exports them."""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc

from aitbc.client import Client
from aitbc.config import DEFAULT_GRPC_ADDRESS

_PLAINTEXT_PORT = int(DEFAULT_GRPC_ADDRESS.rpartition(":")[2])
_TLS_PORT = 443
_PLAINTEXT_SCHEMES = frozenset({"", "http", "grpc"})
_TLS_SCHEMES = frozenset({"https", "grpcs"})


def parse_api_url(api_url: str) -> tuple[str, bool]:
    """The gRPC target ("HOST:PORT") that `api_url` names, and whether it needs TLS."""
    # Without a scheme, urlsplit would read "host:port" as scheme "host".
    parts = urlsplit(api_url if "://" in api_url else f"//{api_url}")
    scheme = parts.scheme.lower()
    if scheme not in _PLAINTEXT_SCHEMES | _TLS_SCHEMES:
        raise ValueError(f"api_url {api_url!r}: unsupported scheme {parts.scheme!r}; use http, https, grpc or grpcs")
    if not parts.hostname:
        raise ValueError(f"api_url {api_url!r} names no host")
    tls = scheme in _TLS_SCHEMES
    try:
        port = parts.port or (_TLS_PORT if tls else _PLAINTEXT_PORT)
    except ValueError as error:
        raise ValueError(f"api_url {api_url!r}: {error}") from None
    # urlsplit drops the brackets of an IPv6 literal; gRPC targets need them.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", tls


class AITBCClient(Client):
    """`Client` constructed the seed's way, from an `api_url` (see the `aitbc_sdk` docstring) and an `api_key`.

    `submit_job` returns a job with `.id` and `.status`; `wait_for_job(job_id, timeout=60)` one with `.output`.
    Without `api_url` the coordinator address comes from `$AITBC_COORDINATOR`, else 127.0.0.1:50051.
    """

    def __init__(self, api_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        if api_url is None:
            super().__init__(None, api_key, timeout=timeout)
            return
        target, tls = parse_api_url(api_url)
        credentials = grpc.ssl_channel_credentials() if tls else None
        super().__init__(target, api_key, timeout=timeout, credentials=credentials)
