"""Options the server commands share: the data directory, the coordinator's TLS, metrics and log format."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc

from aitbc import config
from aitbc.logs import add_log_format_argument
from aitbc.tls import TlsConfigError, server_credentials


def add_home_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=None, help=f"data directory (default: ${config.ENV_HOME}, else ~/.aitbc)"
    )


def home_of(ns: argparse.Namespace) -> Path:
    home: Path = ns.home or config.aitbc_home()
    return home


def add_coordinator_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain: serve gRPC over TLS only (with --tls-key)"
    )
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle: require mutual TLS, a client certificate signed by it, from every caller"
        " (miners, gateway, CLI, SDK)",
    )


def server_credentials_from(ns: argparse.Namespace) -> grpc.ServerCredentials | None:
    if ns.tls_cert is None and ns.tls_key is None:
        if ns.tls_client_ca is not None:
            raise TlsConfigError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first")
        return None
    if ns.tls_cert is None or ns.tls_key is None:
        raise TlsConfigError("--tls-cert and --tls-key go together")
    return server_credentials(ns.tls_cert, ns.tls_key, ns.tls_client_ca)


def add_observability_arguments(parser: argparse.ArgumentParser) -> None:
    """The coordinator's `--metrics-listen` and `--log-format`."""
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    add_log_format_argument(parser)
