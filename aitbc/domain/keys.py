"""API keys: roles, generation and hashing. Only hashes are ever stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    CLIENT = "client"
    MINER = "miner"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, its role and the account that owns jobs."""

    key_id: str
    role: Role
    owner_id: str

    def may_see(self, owner_id: str) -> bool:
        return self.role is Role.ADMIN or self.owner_id == owner_id


def generate_key(role: Role) -> str:
    # 256 bits of entropy: a fast hash is enough, no password KDF needed.
    return f"aitbc_{role.value}_{secrets.token_urlsafe(32)}"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id(key_hash: str) -> str:
    return f"key_{key_hash[:12]}"
