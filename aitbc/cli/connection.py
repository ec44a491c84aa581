"""How a client command reaches the coordinator: its `--coordinator`, `--api-key` and TLS options, and the client."""

from __future__ import annotations

import argparse

from aitbc import config
from aitbc.cli.reporting import CommandError
from aitbc.cli.tls_options import add_tls_options, sdk_client
from aitbc.client import Client


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help=f"coordinator gRPC address (default: ${config.ENV_COORDINATOR}, else {config.DEFAULT_GRPC_ADDRESS})",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"client API key (default: ${config.ENV_API_KEY}, else the key saved in {config.aitbc_home()})",
    )
    add_tls_options(parser)


def open_client(ns: argparse.Namespace) -> Client:
    key = config.api_key(ns.api_key)
    if key is None:
        raise CommandError(
            f"no API key: pass --api-key KEY or set {config.ENV_API_KEY}; for a local coordinator, "
            f"`make run` (`aitbc up`) starts one and saves a key in {config.aitbc_home()}"
        )
    return sdk_client(ns, key)
