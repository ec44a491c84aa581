"""Webhooks at the coordinator: signed deliveries, retries on the ManualClock, the outbox across a restart."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.jobs import JobSpec, SamplingParams
from aitbc.domain.webhooks import (
    DeliveryRecord,
    DeliveryStatus,
    WebhookRecord,
    retry_delay,
    sign,
    verify_signature,
)
from aitbc.store.base import Store
from tests.conftest import TEST_CATALOG
from tests.coordinator.test_parts import CLIENT, OTHER_CLIENT, started
from tests.support.webhook_receiver import Received, webhook_receiver

CONFIG = CoordinatorConfig(catalog=TEST_CATALOG, allow_private_webhooks=True)
EVENTS = ["job.completed", "job.failed", "job.canceled"]


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


async def canceled_job(coordinator: Coordinator) -> str:
    """A queued job (no miner), canceled: its terminal transition queues the deliveries."""
    spec = JobSpec.build(prompt="hello", model="tiny", params=SamplingParams.build(max_tokens=8))
    job = await coordinator.submit(CLIENT, spec, queue_if_unavailable=True)
    await coordinator.cancel(CLIENT, job.job_id)
    return job.job_id


async def delivery_after(coordinator: Coordinator, webhook_id: str, attempts: int) -> DeliveryRecord:
    """The webhook's newest delivery once the worker recorded `attempts` attempts of it (the receiver hears a POST
    before the worker has stored its answer)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        _, deliveries = await coordinator.webhooks.get(CLIENT, webhook_id)
        if deliveries and deliveries[0].attempts >= attempts:
            return deliveries[0]
        assert asyncio.get_running_loop().time() < deadline, f"attempt {attempts} was never recorded"
        await asyncio.sleep(0.01)


def check_signed(received: Received, secret: str, clock: ManualClock) -> dict[str, object]:
    header = received.headers["aitbc-signature"]
    assert verify_signature(secret, header, received.body, now=int(clock.now().timestamp()))
    assert not verify_signature("whsec_wrong", header, received.body, now=int(clock.now().timestamp()))
    assert not verify_signature(secret, header, received.body + b" ", now=int(clock.now().timestamp()))
    event: dict[str, object] = json.loads(received.body)
    assert received.headers["aitbc-delivery"] == event["id"]
    assert received.headers["aitbc-event"] == event["type"]
    return event


async def test_a_terminal_job_is_delivered_signed(store: Store) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver, started(store, clock, CONFIG) as coordinator:
        webhook = await coordinator.webhooks.create(CLIENT, receiver.url, ["job.canceled"])
        other = await coordinator.webhooks.create(OTHER_CLIENT, receiver.url, EVENTS)
        job_id = await canceled_job(coordinator)
        [received] = await receiver.wait_for(1)
        event = check_signed(received, webhook.secret, clock)
        assert event["type"] == "job.canceled"
        data = event["data"]
        assert isinstance(data, dict)
        assert (data["job_id"], data["status"], data["error"]) == (job_id, "canceled", "canceled by the client")
        assert not verify_signature(other.secret, received.headers["aitbc-signature"], received.body, now=0)
        delivered = await delivery_after(coordinator, webhook.webhook_id, 1)
        assert (delivered.status, delivered.attempts, delivered.last_status_code) == (DeliveryStatus.DELIVERED, 1, 200)
        # The other account's webhook heard nothing of this account's job.
        assert (await coordinator.webhooks.get(OTHER_CLIENT, other.webhook_id))[1] == []


async def test_failed_deliveries_are_retried_with_backoff_until_one_succeeds(store: Store) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver, started(store, clock, CONFIG) as coordinator:
        receiver.statuses = [500, 503]
        webhook = await coordinator.webhooks.create(CLIENT, receiver.url, EVENTS)
        await canceled_job(coordinator)
        await receiver.wait_for(1)
        pending = await delivery_after(coordinator, webhook.webhook_id, 1)
        assert (pending.status, pending.attempts, pending.last_status_code) == (DeliveryStatus.PENDING, 1, 500)
        assert pending.next_attempt_at is not None
        delay = (pending.next_attempt_at - clock.now()).total_seconds()
        # The first retry waits 10 s, less up to half of it at random.
        assert 5 <= delay <= 10
        await clock.advance(delay - 1)
        assert len(receiver.received) == 1, "retried before its time"
        await clock.advance(1)
        await receiver.wait_for(2)
        again = await delivery_after(coordinator, webhook.webhook_id, 2)
        assert again.next_attempt_at is not None
        # The second waits twice as long.
        assert 10 <= (again.next_attempt_at - clock.now()).total_seconds() <= 20
        await clock.advance(20)
        received = await receiver.wait_for(3)
        ids = {r.headers["aitbc-delivery"] for r in received}
        assert len(ids) == 1, "a retry is the same delivery: receivers deduplicate on its id"
        assert len({r.body for r in received}) == 1
        done = await delivery_after(coordinator, webhook.webhook_id, 3)
        assert (done.status, done.attempts, done.last_status_code, done.last_error) == (
            DeliveryStatus.DELIVERED,
            3,
            200,
            "",
        )


async def test_deliveries_give_up_after_a_day(store: Store) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver, started(store, clock, CONFIG) as coordinator:
        receiver.statuses = [500] * 1000
        webhook = await coordinator.webhooks.create(CLIENT, receiver.url, EVENTS)
        await canceled_job(coordinator)
        attempts = 1
        while True:
            delivery = await delivery_after(coordinator, webhook.webhook_id, attempts)
            if delivery.status is not DeliveryStatus.PENDING:
                break
            assert delivery.next_attempt_at is not None
            await clock.advance((delivery.next_attempt_at - clock.now()).total_seconds())
            attempts += 1
        assert delivery.status is DeliveryStatus.FAILED
        assert delivery.attempts == attempts
        # Exponential with a one-hour cap (less jitter): a day holds 20 to 60 attempts, not thousands.
        assert 20 <= attempts <= 60


async def test_pending_deliveries_survive_a_restart(store: Store, tmp_path: Path) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    # Nothing listens on `port` now: the first attempt fails to connect.
    url = f"http://127.0.0.1:{port}/hook"
    async with started(store, clock, CONFIG) as coordinator:
        webhook = await coordinator.webhooks.create(CLIENT, url, EVENTS)
        job_id = await canceled_job(coordinator)
        failed = await delivery_after(coordinator, webhook.webhook_id, 1)
        assert failed.status is DeliveryStatus.PENDING
        assert failed.last_status_code == 0
        assert failed.last_error
    async with webhook_receiver(port) as receiver, started(store, clock, CONFIG) as restarted:
        await clock.advance(60)
        [received] = await receiver.wait_for(1)
        event = check_signed(received, webhook.secret, clock)
        assert event["id"] == failed.delivery_id
        data = event["data"]
        assert isinstance(data, dict)
        assert data["job_id"] == job_id
        delivered = await delivery_after(restarted, webhook.webhook_id, 2)
        assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 2)


async def test_a_test_event_and_tenants(store: Store) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver, started(store, clock, CONFIG) as coordinator:
        webhook = await coordinator.webhooks.create(CLIENT, receiver.url, ["job.completed"])
        delivery = await coordinator.webhooks.test(CLIENT, webhook.webhook_id)
        [received] = await receiver.wait_for(1)
        event = check_signed(received, webhook.secret, clock)
        assert (event["id"], event["type"]) == (delivery.delivery_id, "webhook.test")
        for call in (
            coordinator.webhooks.get(OTHER_CLIENT, webhook.webhook_id),
            coordinator.webhooks.test(OTHER_CLIENT, webhook.webhook_id),
            coordinator.webhooks.delete(OTHER_CLIENT, webhook.webhook_id),
        ):
            with pytest.raises(AitbcError) as refused:
                await call
            assert (refused.value.reason, refused.value.field) == (Reason.WEBHOOK_NOT_FOUND, "webhook_id")
        assert await coordinator.webhooks.all(OTHER_CLIENT) == []
        await coordinator.webhooks.delete(CLIENT, webhook.webhook_id)
        assert await coordinator.webhooks.all(CLIENT) == []


@pytest.mark.parametrize(
    ("url", "events", "field", "words"),
    [
        ("ftp://example.com/hook", EVENTS, "url", "http or https"),
        ("example.com/hook", EVENTS, "url", "http or https"),
        ("http://user:pw@example.com/hook", EVENTS, "url", "credentials"),
        ("http://127.0.0.1:9/hook", EVENTS, "url", "--allow-private-webhooks"),
        ("http://10.1.2.3/hook", EVENTS, "url", "private"),
        ("http://[::1]/hook", EVENTS, "url", "loopback"),
        ("https://example.com/hook", ["job.started"], "events", "unknown event 'job.started'"),
        ("https://example.com/hook", [], "events", "at least one"),
    ],
)
async def test_bad_webhooks_are_refused_naming_the_field(
    store: Store, url: str, events: list[str], field: str, words: str
) -> None:
    config = CoordinatorConfig(catalog=TEST_CATALOG)  # private addresses refused, as by default

    async def public(host: str) -> list[str]:
        return ["93.184.215.14"]

    async with started(store, ManualClock(), config) as coordinator:
        if "example.com" in url:
            coordinator.webhooks._resolve = public
        with pytest.raises(AitbcError) as refused:
            await coordinator.webhooks.create(CLIENT, url, events)
        assert (refused.value.reason, refused.value.field) == (Reason.INVALID_ARGUMENT, field)
        assert words in refused.value.message


async def test_the_delivery_log_is_pruned_after_a_week(store: Store) -> None:
    clock = ManualClock()
    async with webhook_receiver() as receiver, started(store, clock, CONFIG) as coordinator:
        webhook = await coordinator.webhooks.create(CLIENT, receiver.url, EVENTS)
        await coordinator.webhooks.test(CLIENT, webhook.webhook_id)
        await delivery_after(coordinator, webhook.webhook_id, 1)
        await clock.advance(timedelta(days=6).total_seconds())
        await coordinator.webhooks.test(CLIENT, webhook.webhook_id)
        await delivery_after(coordinator, webhook.webhook_id, 1)
        assert len((await coordinator.webhooks.get(CLIENT, webhook.webhook_id))[1]) == 2
        await clock.advance(timedelta(days=2).total_seconds())
        await coordinator.webhooks.test(CLIENT, webhook.webhook_id)
        await receiver.wait_for(3)
        kept = (await delivery_after(coordinator, webhook.webhook_id, 1)).created_at
        _, deliveries = await coordinator.webhooks.get(CLIENT, webhook.webhook_id)
        assert len(deliveries) == 2, "the first, eight days old, was pruned"
        assert deliveries[0].created_at == kept


async def test_each_attempt_checks_the_address_again(store: Store) -> None:
    """A name that moved to a private address ends its delivery; one that does not resolve now is retried."""
    answers: list[list[str] | OSError] = [["93.184.215.14"], OSError("temporary failure"), ["10.0.0.7"]]

    async def resolve(host: str) -> list[str]:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, OSError):
            raise answer
        return answer

    clock = ManualClock()
    async with started(store, clock, CoordinatorConfig(catalog=TEST_CATALOG)) as coordinator:
        coordinator.webhooks._resolve = resolve
        webhook = await coordinator.webhooks.create(CLIENT, "https://hooks.example.com/x", EVENTS)
        await canceled_job(coordinator)
        first = await delivery_after(coordinator, webhook.webhook_id, 1)
        assert (first.status, first.last_error) == (
            DeliveryStatus.PENDING,
            "cannot resolve 'hooks.example.com': temporary failure",
        )
        assert first.next_attempt_at is not None
        await clock.advance((first.next_attempt_at - clock.now()).total_seconds())
        second = await delivery_after(coordinator, webhook.webhook_id, 2)
        assert second.status is DeliveryStatus.FAILED
        assert second.last_error.startswith("refused: host 'hooks.example.com' is on a private")
        assert second.next_attempt_at is None


def test_signatures_and_the_retry_schedule() -> None:
    body = b'{"id":"evt_1"}'
    header = sign("whsec_k", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("whsec_k", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_k", header, body, now=1_700_000_301), "older than the tolerance"
    assert not verify_signature("whsec_k", "v1=abc", body, now=1_700_000_000)
    rng = random.Random(1)
    delays = [retry_delay(attempt, rng) for attempt in range(1, 15)]
    assert all(5 <= d <= 10 for d in delays[:1])
    assert all(1800 <= d <= 3600 for d in delays[-3:])


class CountingDueReads:
    """The store, counting how often the delivery worker looks for due deliveries."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.due_reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def due_deliveries(self, now: datetime, limit: int) -> list[tuple[DeliveryRecord, WebhookRecord]]:
        self.due_reads += 1
        return await self._store.due_deliveries(now, limit)


async def test_finished_jobs_cost_the_outbox_nothing_while_no_webhook_exists(store: Store) -> None:
    counting = CountingDueReads(store)
    async with started(counting, ManualClock(), CONFIG) as coordinator:  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the worker's first look, at start
        before = counting.due_reads
        for _ in range(3):
            await canceled_job(coordinator)
        await asyncio.sleep(0.05)
        if store.may_queue_deliveries():
            # PostgreSQL: another coordinator may have made a webhook, so every finished job is looked after.
            assert counting.due_reads > before
        else:
            assert counting.due_reads == before
        async with webhook_receiver() as receiver:
            await coordinator.webhooks.create(CLIENT, receiver.url, ["job.canceled"])
            await canceled_job(coordinator)
            [received] = await receiver.wait_for(1)  # with a webhook, the next finished job wakes the worker
        assert json.loads(received.body)["type"] == "job.canceled"
