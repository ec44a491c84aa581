"""Ed25519 signing keys on disk: PKCS#8 PEM files that only their owner may read.

The domain keeps keys as 32-byte seeds (`aitbc.domain.signing`) and never
touches files; this module is the one place that does, for the coordinator
(receipts and blocks) and miners (attestations) alike. PEM is what OpenSSL
reads (`openssl pkey -in coordinator.pem -pubout`), so an operator can inspect
or back up a key with standard tools. Like ssh, a key that others can read is
refused rather than used.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from aitbc.domain.signing import generate_seed


class KeyFileError(Exception):
    """A key file that is missing, unreadable, not an Ed25519 key, or readable by others."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def write_private_key(path: Path, seed: bytes, *, overwrite: bool = False) -> None:
    """Write `seed` as PEM, mode 0600 from the moment the file exists (never briefly world-readable)."""
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(path, "already exists; refusing to overwrite a signing key") from None
    with os.fdopen(descriptor, "wb") as file:
        # An existing file keeps its old mode under O_TRUNC; a umask may narrow 0600 but never widen it.
        os.fchmod(file.fileno(), 0o600)
        file.write(pem)


def read_private_key(path: Path) -> bytes:
    """The 32-byte seed in the PEM file at `path`."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        raise KeyFileError(path, f"cannot read: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(path, f"mode {stat.S_IMODE(mode):04o} lets others read it; run chmod 600 {path}")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(path, f"not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(path, f"holds a {type(key).__name__}, not an Ed25519 key")
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def load_or_create_private_key(path: Path) -> bytes:
    """The key at `path`, generated and written there first if there is none."""
    if not path.exists():
        # Another process may create it first: then theirs is the key.
        with contextlib.suppress(KeyFileError):
            write_private_key(path, generate_seed())
    return read_private_key(path)
