"""Accounts' public addresses: `ait1…`, bech32 (BIP 173) of a hash of the account id.

Every API key belongs to an account; the ledger, receipts and the explorer
name accounts only by address, so a public block never reveals an account id.
The address is the bech32 encoding, human-readable part "ait", of the first
20 bytes of sha256(account id as UTF-8). It is a commitment, not a key: it
carries no signing power, and the bech32 checksum catches typing mistakes.
"""

from __future__ import annotations

import hashlib

from bech32 import CHARSET, bech32_encode, bech32_verify_checksum, convertbits

from aitbc.domain.canonical import require_text
from aitbc.domain.errors import AitbcError, invalid_argument

ADDRESS_HRP = "ait"
ADDRESS_HASH_BYTES = 20
# 20 bytes are 32 five-bit characters, then the 6-character checksum.
_DATA_CHARS = 32 + 6
ADDRESS_LENGTH = len(ADDRESS_HRP) + 1 + _DATA_CHARS

# Well-known accounts. The store must never hand these ids to a tenant.
MINT_ACCOUNT_ID = "mint"  # the issuer: its balance is minus the credits ever minted
NETWORK_FEE_ACCOUNT_ID = "network-fee"  # receives the network fee of every settlement
# The network's own accounts: no key may belong to them, and no admin may credit them.
RESERVED_ACCOUNTS = frozenset({MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID})


def account_hash(account_id: str) -> bytes:
    """The 20 bytes an address encodes."""
    require_text(account_id, field="account_id")
    return hashlib.sha256(account_id.encode("utf-8")).digest()[:ADDRESS_HASH_BYTES]


def address_of(account_id: str) -> str:
    """The account's public `ait1…` address (lowercase, 42 characters)."""
    five_bit = convertbits(account_hash(account_id), 8, 5)
    assert five_bit is not None  # padding 8-bit input never fails
    return bech32_encode(ADDRESS_HRP, five_bit)


def parse_address(text: str, *, field: str = "address") -> str:
    """The canonical (lowercase) form of an address, or an error naming what is wrong with it."""
    return _check(text, field=field)[0]


def address_payload(text: str, *, field: str = "address") -> bytes:
    """The 20-byte account hash inside an address."""
    return _check(text, field=field)[1]


def is_address(text: str) -> bool:
    try:
        _check(text, field="address")
    except AitbcError:
        return False
    return True


def _check(text: str, *, field: str) -> tuple[str, bytes]:
    if not isinstance(text, str) or not text:
        raise invalid_argument(field, f"must be an {ADDRESS_HRP}1… address")
    if text.lower() != text and text.upper() != text:
        raise invalid_argument(field, "mixes upper and lower case")
    lowered = text.lower()
    hrp, separator, data_part = lowered.rpartition("1")
    if not separator or not hrp:
        raise invalid_argument(field, f"has no '1' separator; an address looks like {ADDRESS_HRP}1…")
    if hrp != ADDRESS_HRP:
        raise invalid_argument(field, f"has prefix {hrp!r}; expected {ADDRESS_HRP!r}")
    for position, char in enumerate(data_part, start=len(hrp) + 1):
        if char not in CHARSET:
            raise invalid_argument(field, f"character {char!r} at position {position} is not in the bech32 alphabet")
    if len(data_part) != _DATA_CHARS:
        raise invalid_argument(field, f"has {len(data_part)} characters after '{ADDRESS_HRP}1'; expected {_DATA_CHARS}")
    values = [CHARSET.index(char) for char in data_part]
    if not bech32_verify_checksum(hrp, values):
        raise invalid_argument(field, "checksum does not match: a character is mistyped or missing")
    payload = convertbits(values[:-6], 5, 8, False)
    if payload is None or len(payload) != ADDRESS_HASH_BYTES:
        raise invalid_argument(field, "does not encode a 20-byte account hash")
    return lowered, bytes(payload)
