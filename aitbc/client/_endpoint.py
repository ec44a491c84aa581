"""Where the SDK's calls go: a coordinator's gRPC address, or a gateway's HTTP base URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aitbc.config import DEFAULT_GRPC_ADDRESS

_PLAINTEXT_PORT = int(DEFAULT_GRPC_ADDRESS.rpartition(":")[2])
_TLS_PORT = 443
_GRPC_SCHEMES = {"": False, "grpc": False, "grpcs": True}
_HTTP_SCHEMES = {"http": False, "https": True}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`transport` "grpc": `address` is "HOST:PORT"; "http": the gateway's base URL (e.g. `https://HOST/api`)."""

    transport: Literal["grpc", "http"]
    address: str
    tls: bool


def parse_endpoint(url: str) -> Endpoint:
    """Read a target the way the SDK accepts it.

    "HOST[:PORT]", "grpc://HOST[:PORT]" (plaintext, default port 50051) and "grpcs://HOST[:PORT]" (TLS,
    default port 443) name a coordinator's gRPC endpoint; a path is ignored. "http://..." and
    "https://..." name an HTTP gateway: the URL, path included, is the base of its REST routes.
    """
    # Without a scheme, urlsplit would read "host:port" as scheme "host".
    parts = urlsplit(url if "://" in url else f"//{url}")
    scheme = parts.scheme.lower()
    if scheme not in _GRPC_SCHEMES | _HTTP_SCHEMES:
        raise ValueError(f"{url!r}: unsupported scheme {parts.scheme!r}; use http, https, grpc or grpcs")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{url!r}: {error}") from None
    if scheme in _HTTP_SCHEMES:
        base = f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")
        return Endpoint("http", base, _HTTP_SCHEMES[scheme])
    tls = _GRPC_SCHEMES[scheme]
    # urlsplit drops the brackets of an IPv6 literal; gRPC targets need them.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint("grpc", f"{host}:{port or (_TLS_PORT if tls else _PLAINTEXT_PORT)}", tls)


def client_endpoint(target: str) -> Endpoint:
    """A `Client` target: a URL as `parse_endpoint` reads it; anything else verbatim as a gRPC target
    ("HOST:PORT", and grpc's own forms such as "dns:///HOST:PORT" or "unix:PATH")."""
    if target.lower().startswith(("http://", "https://", "grpc://", "grpcs://")):
        return parse_endpoint(target)
    return Endpoint("grpc", target, tls=False)
