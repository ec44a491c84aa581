"""Webhooks: what clients register, and the worker that sends their deliveries from the store's outbox.

The job path never waits on a webhook: a terminal transition only adds outbox rows in its own store
transaction (`Store.transition`), and tells the worker to look (`job_event`). The worker sends whatever is
due, records each attempt, and schedules the next one with backoff and jitter for up to a day; since the
outbox is in the store, deliveries left when the coordinator stops are sent after it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aitbc.coordinator.access import require_role
from aitbc.coordinator.clock import Clock
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.events import JobEvent
from aitbc.domain.history import rfc3339
from aitbc.domain.keys import Principal, Role
from aitbc.domain.webhooks import (
    DELIVERY_HEADER,
    DELIVERY_TIMEOUT_SECONDS,
    EVENT_HEADER,
    MAX_WEBHOOKS_PER_ACCOUNT,
    RETRY_WINDOW,
    SIGNATURE_HEADER,
    TEST_EVENT,
    DeliveryRecord,
    DeliveryStatus,
    WebhookRecord,
    check_events,
    check_url,
    is_public,
    new_delivery_id,
    new_secret,
    new_webhook_id,
    retry_delay,
    sign,
)
from aitbc.store.base import Store, StoreUnavailableError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

RECENT_DELIVERIES = 20
# Deliveries sent at once; more wait for the next round.
BATCH = 16
# Finished deliveries are kept this long for the log, then pruned (checked at most once an hour).
DELIVERY_LOG_RETENTION = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)
# How long the worker waits before reading a failing store again.
STORE_RETRY_SECONDS = 5.0
USER_AGENT = "aitbc-webhooks/1"
RESOLVE_TIMEOUT_SECONDS = 5.0
# A delivery this close to due is sent now: timers may fire a hair early (float time, µs in the store).
DUE_SLACK = timedelta(milliseconds=5)

# Resolves a host name to its IP addresses (the event loop's resolver in production).
Resolver = Callable[[str], Awaitable[list[str]]]


async def _resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _not_found(webhook_id: str) -> AitbcError:
    return AitbcError(Reason.WEBHOOK_NOT_FOUND, f"webhook {webhook_id!r} not found", field="webhook_id")


class Webhooks:
    """Registering, listing, deleting and testing the caller's webhooks."""

    def __init__(self, store: Store, clock: Clock, *, allow_private: bool, resolve: Resolver = _resolve) -> None:
        self._store = store
        self._clock = clock
        self.allow_private = allow_private
        self._resolve = resolve
        self.on_enqueued: Callable[[], None] = lambda: None

    async def check_destination(self, url: str) -> None:
        """Refuse URLs that are not http(s), and (unless the operator allows them) private or loopback hosts."""
        host = check_url(url)
        if self.allow_private:
            return
        try:
            private = await self.private_addresses(host)
        except TimeoutError:
            raise invalid_argument(
                "url", f"host {host!r} did not resolve within {RESOLVE_TIMEOUT_SECONDS:g}s"
            ) from None
        except OSError as error:
            raise invalid_argument("url", f"host {host!r} does not resolve: {error}") from None
        if private:
            raise invalid_argument("url", _private_message(host, private))

    async def private_addresses(self, host: str) -> list[str]:
        """The host's addresses that are not public (all of them if it has none); TimeoutError or OSError
        when it cannot be resolved now."""
        addresses = await self._clock.wait_for(self._resolve(host), RESOLVE_TIMEOUT_SECONDS)
        return sorted({address for address in addresses if not is_public(address)}) or (
            ["none"] if not addresses else []
        )

    async def create(self, principal: Principal, url: str, events: list[str]) -> WebhookRecord:
        require_role(principal, Role.CLIENT)
        checked_events = check_events(events)
        await self.check_destination(url)
        if len(await self._store.webhooks(principal.owner_id)) >= MAX_WEBHOOKS_PER_ACCOUNT:
            raise invalid_argument(
                "url", f"an account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first"
            )
        webhook = WebhookRecord(
            webhook_id=new_webhook_id(),
            owner_id=principal.owner_id,
            url=url,
            events=checked_events,
            secret=new_secret(),
            created_at=self._clock.now(),
        )
        await self._store.create_webhook(webhook)
        return webhook

    async def all(self, principal: Principal) -> list[WebhookRecord]:
        require_role(principal, Role.CLIENT)
        return await self._store.webhooks(None if principal.role is Role.ADMIN else principal.owner_id)

    async def get(self, principal: Principal, webhook_id: str) -> tuple[WebhookRecord, list[DeliveryRecord]]:
        webhook = await self._owned(principal, webhook_id)
        return webhook, await self._store.deliveries(webhook_id, RECENT_DELIVERIES)

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        await self._owned(principal, webhook_id)
        await self._store.delete_webhook(webhook_id)

    async def test(self, principal: Principal, webhook_id: str) -> DeliveryRecord:
        """Queue a `webhook.test` event, sent at once and retried like any other."""
        webhook = await self._owned(principal, webhook_id)
        now = self._clock.now()
        data = {"webhook_id": webhook.webhook_id, "message": "a test event from aitbc webhooks test"}
        payload = json.dumps({"type": TEST_EVENT, "created_at": rfc3339(now), "data": data}, separators=(",", ":"))
        delivery = DeliveryRecord(
            delivery_id=new_delivery_id(),
            webhook_id=webhook_id,
            event=TEST_EVENT,
            job_id="",
            payload=payload,
            status=DeliveryStatus.PENDING,
            created_at=now,
            next_attempt_at=now,
        )
        await self._store.enqueue_delivery(delivery)
        self.on_enqueued()
        return delivery

    async def _owned(self, principal: Principal, webhook_id: str) -> WebhookRecord:
        require_role(principal, Role.CLIENT)
        if not webhook_id:
            raise invalid_argument("webhook_id", "is required")
        webhook = await self._store.webhook(webhook_id)
        # Another account's webhook looks exactly like a missing one.
        if webhook is None or not principal.may_see(webhook.owner_id):
            raise _not_found(webhook_id)
        return webhook


class DeliveryWorker:
    """Sends due deliveries; one task, woken by new deliveries and by the clock for retries."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        webhooks: Webhooks,
        *,
        rng: random.Random | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._webhooks = webhooks
        self._rng = rng or random.Random()
        self._client = client
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pruned_at: datetime | None = None
        webhooks.on_enqueued = self.wake

    def start(self) -> None:
        if self._client is None:
            # Imported here: every `aitbc` command loads this module (through the server commands), few send.
            import httpx

            self._client = httpx.AsyncClient(
                timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False, headers={"User-Agent": USER_AGENT}
            )
        self._task = asyncio.create_task(self._run(), name="webhook-deliveries")

    def wake(self) -> None:
        self._wake.set()

    def job_event(self, event: JobEvent) -> None:
        """A stored event; a terminal one may have queued deliveries (in its own transaction)."""
        if event.is_final and self._store.may_queue_deliveries():
            self.wake()

    async def close(self) -> None:
        """Stop sending; what is still pending stays in the outbox for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._prune()
                due = await self._store.due_deliveries(self._clock.now() + DUE_SLACK, BATCH)
                if due:
                    await asyncio.gather(*(self._attempt(delivery, hook) for delivery, hook in due))
                    continue
                next_at = await self._store.next_delivery_at()
            except StoreUnavailableError as error:
                log.warning("webhook deliveries wait for the store: %s", error)
                next_at = self._clock.now() + timedelta(seconds=STORE_RETRY_SECONDS)
            # A day when nothing is pending: any new delivery wakes the worker first.
            wait = 86_400.0 if next_at is None else (next_at - self._clock.now() - DUE_SLACK).total_seconds()
            if wait <= 0:
                continue  # came due while this round looked (a timer at 0 would wait for the clock to move)
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(self._wake.wait(), wait)

    async def _prune(self) -> None:
        now = self._clock.now()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            if pruned := await self._store.prune_deliveries(now - DELIVERY_LOG_RETENTION):
                log.info("pruned %d webhook deliveries older than %s", pruned, DELIVERY_LOG_RETENTION)

    async def _attempt(self, delivery: DeliveryRecord, webhook: WebhookRecord) -> None:
        status_code, latency_ms, error = await self._post(delivery, webhook)
        now = self._clock.now()
        attempts = delivery.attempts + 1
        next_at: datetime | None = None
        if 200 <= status_code < 300:
            status = DeliveryStatus.DELIVERED
        else:
            next_at = now + timedelta(seconds=retry_delay(attempts, self._rng))
            if next_at > delivery.created_at + RETRY_WINDOW or error.startswith("refused:"):
                status, next_at = DeliveryStatus.FAILED, None
            else:
                status = DeliveryStatus.PENDING
            log.info(
                "webhook %s delivery %s attempt %d failed: %s",
                webhook.webhook_id,
                delivery.delivery_id,
                attempts,
                error,
            )
        try:
            await self._store.record_delivery_attempt(
                delivery.delivery_id,
                status=status,
                status_code=status_code,
                latency_ms=latency_ms,
                error=error,
                next_attempt_at=next_at,
                now=now,
            )
        except StoreUnavailableError as failure:
            # Left pending and due: it is sent again (receivers deduplicate on the delivery id).
            log.warning("cannot record webhook delivery %s: %s", delivery.delivery_id, failure)

    async def _post(self, delivery: DeliveryRecord, webhook: WebhookRecord) -> tuple[int, int, str]:
        """(HTTP status or 0, latency in ms, error or "")."""
        if not self._webhooks.allow_private:
            # Checked again at each attempt: a host name may have moved to a private address since creation.
            # A private address ends the delivery; a name that does not resolve now is retried like a 503.
            host = check_url(webhook.url)
            try:
                private = await self._webhooks.private_addresses(host)
            except (TimeoutError, OSError) as error:
                return 0, 0, f"cannot resolve {host!r}: {error or 'timed out'}"
            if private:
                return 0, 0, f"refused: {_private_message(host, private)}"
        body = delivery.body
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(webhook.secret, int(self._clock.now().timestamp()), body),
            DELIVERY_HEADER: delivery.delivery_id,
            EVENT_HEADER: delivery.event,
        }
        started = time.monotonic()
        assert self._client is not None, "started"
        try:
            response = await self._client.post(webhook.url, content=body, headers=headers)
        except Exception as failure:  # httpx.HTTPError, and whatever else a broken receiver provokes
            return 0, _ms_since(started), f"{type(failure).__name__}: {failure}"[:500]
        latency = _ms_since(started)
        if 200 <= response.status_code < 300:
            return response.status_code, latency, ""
        return response.status_code, latency, f"HTTP {response.status_code}"


def _private_message(host: str, private: list[str]) -> str:
    return (
        f"host {host!r} is on a private, loopback or reserved address ({', '.join(private)});"
        " the coordinator's operator can allow that with --allow-private-webhooks"
    )


def _ms_since(started: float) -> int:
    # Latency is real time, whatever clock schedules the attempts.
    return int((time.monotonic() - started) * 1000)
