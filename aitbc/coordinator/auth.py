"""API keys: check them on every call, note their use, list and revoke them.

A verified key is remembered, which keeps a store read off every call; revoking it forgets it at once and
ends every stream it opened. When each key was last used is kept in memory and written behind (one write
every few seconds, not one per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from aitbc.coordinator.access import require_role
from aitbc.coordinator.clock import Clock, SystemClock
from aitbc.domain.accounts import RESERVED_ACCOUNTS
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.keys import Principal, Role, generate_key, hash_key, key_id
from aitbc.store.base import ApiKeyRecord, Store

log = logging.getLogger(__name__)

MISSING_KEY = "an API key is required: send the metadata x-api-key: KEY or authorization: Bearer KEY"
# How long uses of keys gather in memory before they are written.
USE_WRITE_DELAY_SECONDS = 5.0


class Authenticator:
    def __init__(
        self, store: Store, clock: Clock | None = None, *, write_delay: float = USE_WRITE_DELAY_SECONDS
    ) -> None:
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._write_delay = write_delay
        self._known: dict[str, Principal] = {}
        # Keys revoked while this process runs. A check that read the store just before a revocation committed
        # must not put the key back into `_known`; revocation is final, so the set only grows.
        self._revoked: set[str] = set()
        # Per key id, a callback for each open stream it authenticated; revoking the key calls them.
        self._streams: dict[str, list[Callable[[], None]]] = {}
        self._used: dict[str, datetime] = {}
        self._writer: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self._closed = False

    async def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise AitbcError(
                Reason.UNAUTHENTICATED,
                "an API key is required: send x-api-key: KEY or authorization: Bearer KEY metadata",
            )
        key_hash = hash_key(raw_key)
        principal = self._known.get(key_hash)
        if principal is None:
            principal = await self._store.principal_for(key_hash)
            if principal is None or principal.key_id in self._revoked:
                raise AitbcError(Reason.UNAUTHENTICATED, "the API key is not valid (unknown or revoked)")
            self._known[key_hash] = principal
        self._note_use(principal.key_id)
        return principal

    @contextlib.contextmanager
    def stream_of(self, principal: Principal, on_revoked: Callable[[], None]) -> Iterator[None]:
        """For the life of a stream the key opened: `on_revoked` is called if the key is revoked meanwhile."""
        streams = self._streams.setdefault(principal.key_id, [])
        streams.append(on_revoked)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                streams.remove(on_revoked)
            if not streams:
                self._streams.pop(principal.key_id, None)
            # A stream can be open for hours: its end is a use too.
            self._note_use(principal.key_id)

    async def list_keys(self, principal: Principal) -> list[ApiKeyRecord]:
        """The caller's account's keys (every key for an admin); a key with a stream open is in use now."""
        require_role(principal, Role.CLIENT)
        await self.flush()
        owner = None if principal.role is Role.ADMIN else principal.owner_id
        now = self._clock.now()
        return [
            replace(record, last_used_at=now) if record.key_id in self._streams else record
            for record in await self._store.api_keys(owner_id=owner)
        ]

    async def revoke(self, principal: Principal, target_key_id: str) -> ApiKeyRecord:
        """Revoke a key of the caller's account (any key for an admin): it stops working at once, everywhere.

        Every call from now on is refused, and every stream the key has open ends with UNAUTHENTICATED.
        """
        require_role(principal, Role.CLIENT)
        record = await self._store.api_key(target_key_id)
        if record is None or not principal.may_see(record.owner_id):
            # Another account's key looks exactly like a missing one.
            raise AitbcError(Reason.KEY_NOT_FOUND, f"key {target_key_id!r} not found", field="key_id")
        revoked = await self._store.revoke_api_key(target_key_id, self._clock.now())
        assert revoked is not None, "keys are never deleted"
        self._forget(target_key_id)
        if record.revoked_at is None:
            log.info("key %s (%s of %s) revoked by %s", target_key_id, record.role, record.owner_id, principal.key_id)
        return revoked

    def _forget(self, revoked_key_id: str) -> None:
        self._revoked.add(revoked_key_id)
        for key_hash in [key for key, known in self._known.items() if known.key_id == revoked_key_id]:
            del self._known[key_hash]
        for end_stream in self._streams.pop(revoked_key_id, []):
            end_stream()

    # Last use, written behind

    def _note_use(self, used_key_id: str) -> None:
        self._used[used_key_id] = self._clock.now()
        if not self._closed and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_behind(), name="key use writer")

    async def close(self) -> None:
        """Write what is pending; uses noted later (streams ending as the server stops) are not written."""
        await self.flush()
        self._closed = True

    async def flush(self) -> None:
        """Write the uses noted so far and wait until they are stored."""
        self._flush_now.set()
        if self._used and not self._closed and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_behind(), name="key use writer")
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_behind(self) -> None:
        with contextlib.suppress(TimeoutError):
            await self._clock.wait_for(self._flush_now.wait(), self._write_delay)
        while self._used:
            used, self._used = self._used, {}
            try:
                await self._store.record_key_use(used)
            except Exception:
                # When a key was last used is advisory: a failing store must not fail the calls that use keys.
                log.exception("storing when %d key(s) were last used failed", len(used))
                break
        self._flush_now.clear()


async def create_api_key(store: Store, role: Role, now: datetime, owner_id: str | None = None) -> tuple[str, Principal]:
    """Mint a key; returns the raw key (shown once, never stored) and its principal.

    Without an owner, the key is its own account: its jobs are visible to it alone. The network's own
    accounts (`mint`, `network-fee`) can own no key: whoever held one could spend the fees.
    """
    if owner_id in RESERVED_ACCOUNTS:
        raise invalid_argument("owner", f"{owner_id!r} is a reserved account of the network; choose another owner")
    raw_key = generate_key(role)
    key_hash = hash_key(raw_key)
    principal = await store.add_api_key(key_hash, role, owner_id or key_id(key_hash), now)
    return raw_key, principal
