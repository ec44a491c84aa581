"""TLS for gRPC: the one place that reads certificate files and builds channel and server credentials.

Every caller of the coordinator (miners, the gateway's channel, the SDK, the CLI) builds its channel with
`channel_credentials`; the coordinator serves with `server_credentials`. Files are read once, at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

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
        raise TlsConfigError("--tls-cert and --tls-key go together: a client certificate needs its key")
    if not (by_scheme or tls or ca or cert):
        return target, None
    for path in (ca, cert, key):
        if path is not None:
            _read(path)  # fail at start-up, naming the file, rather than at the first handshake
    return target, ClientTls(ca=ca, cert=cert, key=key)


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
