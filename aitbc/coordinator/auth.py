"""API key checks: hash the presented key and find its principal."""

from __future__ import annotations

from datetime import datetime

from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.keys import Principal, Role, generate_key, hash_key, key_id
from aitbc.store.base import Store


class Authenticator:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Keys are never revoked yet, so a verified key stays valid for the
        # life of the process; this keeps a store read off every call.
        self._known: dict[str, Principal] = {}

    async def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise AitbcError(Reason.UNAUTHENTICATED, "an API key is required in the x-api-key metadata")
        key_hash = hash_key(raw_key)
        principal = self._known.get(key_hash)
        if principal is None:
            principal = await self._store.principal_for(key_hash)
            if principal is None:
                raise AitbcError(Reason.UNAUTHENTICATED, "the API key is not valid")
            self._known[key_hash] = principal
        return principal


async def create_api_key(store: Store, role: Role, now: datetime, owner_id: str | None = None) -> tuple[str, Principal]:
    """Mint a key; returns the raw key (shown once, never stored) and its principal.

    Without an owner, the key is its own account: its jobs are visible to it alone.
    """
    raw_key = generate_key(role)
    key_hash = hash_key(raw_key)
    principal = await store.add_api_key(key_hash, role, owner_id or key_id(key_hash), now)
    return raw_key, principal
