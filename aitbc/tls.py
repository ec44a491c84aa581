"""TLS for gRPC: the one place that reads certificate files and builds channel and server credentials.

Every caller of the coordinator (miners, the gateway's channel, the SDK, the CLI) builds its channel with
`channel_credentials`; the coordinator serves with `server_credentials`. Files are read once, at start-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from aitbc.targets import ROUND_ROBIN, channel_target

# Addresses that ask for TLS; "grpc://" and a bare HOST:PORT are plaintext. For the SDK, https:// names an
# HTTP gateway instead (see aitbc.client._endpoint); everywhere else a coordinator is only reached over gRPC.
TLS_SCHEMES = ("https://", "grpcs://")
PLAINTEXT_SCHEMES = ("http://", "grpc://")


class TlsConfigError(ValueError):
    """A TLS option that cannot work: a missing or unreadable file, or options that do not fit together."""


@dataclass(frozen=True, slots=True)
class ClientTls:
    """How a caller reaches the coordinator over TLS.

    `ca`: the CA bundle that signed the coordinator's certificate (None: the system trust store).
    `cert`/`key`: this caller's certificate and key, for a coordinator that requires mutual TLS.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return channel_credentials(self.ca, self.cert, self.key)


def split_target(address: str) -> tuple[str, bool]:
    """`address` as a gRPC target without its scheme, and whether the scheme asks for TLS."""
    lowered = address.lower()
    for scheme in TLS_SCHEMES:
        if lowered.startswith(scheme):
            return address[len(scheme) :].rstrip("/"), True
    for scheme in PLAINTEXT_SCHEMES:
        if lowered.startswith(scheme):
            return address[len(scheme) :].rstrip("/"), False
    return address, False


def client_tls(
    address: str, *, tls: bool = False, ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> tuple[str, ClientTls | None]:
    """The gRPC target for `address` and its TLS settings, or None for plaintext.

    TLS is on when the address says https:// or grpcs://, when `tls` is set, or when any certificate file is
    given (a CA or a client certificate only make sense over TLS; silently ignoring one would send keys in the
    clear to an operator who meant otherwise).
    """
    target, by_scheme = split_target(address)
    if (cert is None) != (key is None):
        raise TlsConfigError("a client certificate needs its key, and a key its certificate: give both files")
    if not (by_scheme or tls or ca or cert):
        return target, None
    for path in (ca, cert, key):
        if path is not None:
            _read(path)  # fail at start-up, naming the file, rather than at the first handshake
    return target, ClientTls(ca=ca, cert=cert, key=key)


def aio_channel(
    target: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = (), *, balanced: bool = False
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target`: TLS with `tls`, else plaintext.

    `target` may list replicas (`a:1,b:2`, see aitbc.targets); `balanced` spreads calls over all of them
    instead of keeping to one until it fails."""
    target, extra = channel_target(target)
    options = [*options, *extra, *([ROUND_ROBIN] if balanced else [])]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


def blocking_channel(target: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A blocking channel to `target` (which may list replicas): TLS with `tls`, else plaintext."""
    target, extra = channel_target(target)
    options = [*options, *extra]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, tls.credentials(), options=options)


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Channel credentials that trust `ca` (else the system's roots) and present `cert`/`key` if given."""
    if (cert is None) != (key is None):
        raise TlsConfigError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca) if ca is not None else None,
        private_key=_read(key) if key is not None else None,
        certificate_chain=_read(cert) if cert is not None else None,
    )


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """Serve with `cert`/`key`; with `client_ca`, every caller must present a certificate that CA signed.

    gRPC Python can only request client certificates and require them in one step (there is no "verify if
    presented"), so mutual TLS applies to every caller, the gateway and CLI included, not to miners alone.
    """
    return grpc.ssl_server_credentials(
        [(_read(key), _read(cert))],
        root_certificates=_read(client_ca) if client_ca is not None else None,
        require_client_auth=client_ca is not None,
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"cannot read {path}: {error.strerror or error}") from None


def add_client_tls_arguments(parser: argparse.ArgumentParser, *, cert_flag: str = "--tls-cert") -> None:
    """`--tls`, `--tls-ca` and the client certificate flags (`--tls-cert`/`--tls-key`, or named after
    `cert_flag` where `--tls-cert` means a server certificate, as in the gateway)."""
    key_flag = cert_flag.removesuffix("cert") + "key"
    parser.add_argument(
        "--tls",
        action="store_true",
        help="reach the coordinator over TLS (also implied by an https:// or grpcs:// address, or any --tls-* file)",
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle that signed the coordinator's certificate (default: the system trust store)",
    )
    parser.add_argument(
        cert_flag,
        type=Path,
        metavar="FILE",
        dest="tls_client_cert",
        help=f"PEM client certificate, for a coordinator that requires mutual TLS (with {key_flag})",
    )
    parser.add_argument(
        key_flag, type=Path, metavar="FILE", dest="tls_client_key", help=f"PEM private key of {cert_flag}"
    )


def client_tls_from_args(ns: argparse.Namespace, address: str) -> tuple[str, ClientTls | None]:
    """The target and TLS settings the flags of `add_client_tls_arguments` ask for."""
    return client_tls(
        address,
        tls=bool(getattr(ns, "tls", False)),
        ca=getattr(ns, "tls_ca", None),
        cert=getattr(ns, "tls_client_cert", None),
        key=getattr(ns, "tls_client_key", None),
    )
