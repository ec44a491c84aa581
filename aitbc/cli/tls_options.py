"""TLS to the coordinator for every client command: `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`, and the
channel or SDK client they call for."""

from __future__ import annotations

import argparse

import grpc

from aitbc import config
from aitbc.client import Client
from aitbc.tls import add_client_tls_arguments, blocking_channel, client_tls_from_args

add_tls_options = add_client_tls_arguments


def coordinator_channel(ns: argparse.Namespace) -> grpc.Channel:
    """A blocking channel to `--coordinator` (TLS as the address and the TLS flags say)."""
    target, tls = client_tls_from_args(ns, config.coordinator_address(ns.coordinator))
    return blocking_channel(target, tls)


def sdk_client(ns: argparse.Namespace, api_key: str) -> Client:
    """The SDK's client for `--coordinator`: an http(s):// gateway URL as the SDK reads it (REST), a gRPC
    address over TLS when the address or the TLS flags ask for it, else plaintext gRPC."""
    address = config.coordinator_address(ns.coordinator)
    if address.lower().startswith(("http://", "https://")):
        return Client(address, api_key)
    target, tls = client_tls_from_args(ns, address)
    if tls is None:
        return Client(address, api_key)
    return Client(target, api_key, credentials=tls.credentials())
