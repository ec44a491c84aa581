"""Ed25519 signatures over canonical bytes, with keys held as raw bytes.

A private key is its 32-byte seed (RFC 8032), a public key its 32 raw bytes:
plain bytes keep the domain free of key objects and files. Reading and
writing key files (PEM, mode 0600) is `aitbc.key_files`, outside the domain.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aitbc.domain.canonical import b64url_decode, b64url_encode

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def generate_seed() -> bytes:
    """A new private key (its 32-byte seed) from the OS's randomness."""
    return secrets.token_bytes(SEED_BYTES)


def _private(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != SEED_BYTES:
        raise ValueError(f"an Ed25519 private key is a {SEED_BYTES}-byte seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_of(seed: bytes) -> bytes:
    return _private(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature (deterministic: the same key and message give the same bytes)."""
    return _private(seed).sign(message)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s signature of `message`; malformed keys are just False."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def encode_key(public_key: bytes) -> str:
    """How a public key is written in JSON: base64url, no padding (43 characters)."""
    return b64url_encode(public_key)


def decode_key(text: str, *, field: str) -> bytes:
    return b64url_decode(text, field=field, length=PUBLIC_KEY_BYTES)


def sign_b64(seed: bytes, message: bytes) -> str:
    """A signature as JSON carries it: base64url, no padding (86 characters)."""
    return b64url_encode(sign(seed, message))


def verify_b64(public_key: bytes, message: bytes, signature: str) -> bool:
    """`verify` for a base64url signature; a signature that does not decode is simply invalid."""
    try:
        raw = b64url_decode(signature, field="signature", length=SIGNATURE_BYTES)
    except Exception:
        return False
    return verify(public_key, message, raw)
