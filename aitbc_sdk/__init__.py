"""The seed documents' SDK spelling, on top of `aitbc.client`.

    from aitbc_sdk import AITBCClient

    client = AITBCClient(api_url="http://127.0.0.1:50051", api_key="...")
    job = client.submit_job(prompt="What is the capital of France?", params={"max_tokens": 100})
    print(client.wait_for_job(job.id, timeout=60).output)

`api_url` names the coordinator's **gRPC** endpoint, not an HTTP base URL. It may be "HOST:PORT",
"http://HOST:PORT", "grpc://HOST:PORT" (plaintext, default port 50051) or "https://HOST[:PORT]" and
"grpcs://HOST[:PORT]" (TLS, default port 443). A path such as the seed's `/api` is ignored.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc

from aitbc.client import AitbcApiError, Client, Job, JobStatus
from aitbc.config import DEFAULT_GRPC_ADDRESS

__all__ = ["AITBCClient", "AitbcApiError", "Job", "JobStatus", "parse_api_url"]

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
    """`Client` constructed the seed's way, from an `api_url` (see the module docstring) and an `api_key`.

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
