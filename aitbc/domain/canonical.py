"""The encodings that signed and hashed settlement data uses, in one place.

Canonical JSON is RFC 8785 (JCS): sorted keys, no whitespace, UTF-8, so any
language can rebuild the bytes that were signed. Hashes are lowercase sha256
hex; keys and signatures are base64url without padding (RFC 4648 §5).
Timestamps are RFC 3339 in UTC with a `Z` suffix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from aitbc.domain.errors import invalid_argument

# JSON numbers are IEEE doubles: integers past 2**53 - 1 lose precision in
# other languages' parsers, and RFC 8785 refuses them.
MAX_JSON_INT = 2**53 - 1

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a JSON object (only str, int, bool, None, lists and objects inside)."""
    return rfc8785.dumps(dict(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_hash(text: str) -> str:
    """sha256 hex of the UTF-8 bytes of `text`: how receipts commit to a result."""
    return sha256_hex(text.encode("utf-8"))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, field: str, length: int | None = None) -> bytes:
    """Bytes from unpadded base64url, refusing any other spelling of the same bytes.

    Only the canonical spelling is accepted: otherwise the unused low bits of
    the last character could change without changing the bytes, and a
    signature string could be altered while still verifying.
    """
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise invalid_argument(field, "must be base64url without padding (A-Z a-z 0-9 - _)")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise invalid_argument(field, f"is not base64url: {error}") from None
    if b64url_encode(data) != text:
        raise invalid_argument(field, "is not the canonical base64url spelling of its bytes")
    if length is not None and len(data) != length:
        raise invalid_argument(field, f"must encode {length} bytes, got {len(data)}")
    return data


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. `2026-02-13T10:00:00.000000Z`: one spelling per instant."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp for signed data must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str, *, field: str) -> datetime:
    """A UTC instant from RFC 3339 text ending in `Z` (0 to 6 fractional digits)."""
    if not isinstance(text, str) or not _RFC3339_UTC.match(text):
        raise invalid_argument(field, f"must be an RFC 3339 UTC timestamp such as 2026-02-13T10:00:00Z, got {text!r}")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise invalid_argument(field, f"is not a real instant: {error}") from None


def require_digest(value: object, *, field: str) -> str:
    """A sha256 hex digest: 64 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX_DIGEST.match(value):
        raise invalid_argument(field, f"must be 64 lowercase hex digits (a sha256 digest), got {value!r}")
    return value


def require_int(value: object, *, field: str, minimum: int = 0, maximum: int = MAX_JSON_INT) -> int:
    """An int in range; bool is refused although Python counts it as an int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_argument(field, f"must be an integer, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise invalid_argument(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def require_text(value: object, *, field: str, max_chars: int = 256) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        raise invalid_argument(field, f"must be a non-empty string of at most {max_chars} characters")
    return value
