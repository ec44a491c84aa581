"""Ethereum addresses: `0x` and 40 hex digits, with the EIP-55 checksum when the case is mixed.

Miners may name one as their payout address, and seed 004's routing API
takes the requester's. An address in one case throughout carries no
checksum and is taken as it is; one in mixed case must match its EIP-55
checksum, since a typo in it would otherwise send money nowhere.
"""

from __future__ import annotations

import re
from typing import Final

from eth_hash.auto import keccak

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (not NIST SHA3-256)."""
    digest: bytes = keccak(data)
    return digest


def to_checksum_address(address: str) -> str:
    """The EIP-55 spelling of a well-formed address."""
    hex_digits = address[2:].lower()
    digest = keccak256(hex_digits.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_digits, digest, strict=False))


def address_problem(address: str) -> str | None:
    """Why `address` is no Ethereum address, or None when it is one."""
    if not _ADDRESS.fullmatch(address):
        return f"must be 0x and 40 hex digits, got {address[:50]!r}"
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and address != to_checksum_address(address):
        return f"{address!r} fails its EIP-55 checksum (a mixed-case address must be spelled exactly)"
    return None
