"""AITBC: a marketplace where clients submit AI inference jobs and miners run them.

`from aitbc import Client, AsyncClient` gives the SDK. They load lazily so
that the domain core and the store can be imported without gRPC clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from aitbc.client import AsyncClient, Client


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from aitbc import client

        return getattr(client, name)
    raise AttributeError(f"module 'aitbc' has no attribute {name!r}")
