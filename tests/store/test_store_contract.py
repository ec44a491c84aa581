"""The rest of the `Store` contract, on both stores (`store` is parametrised over SQLite and PostgreSQL):
pages, idempotency, miners, blocks, totals, webhooks and their outbox, results."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from aitbc.domain.accounts import address_of
from aitbc.domain.blocks import seal_block
from aitbc.domain.chain import verify_chain
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams
from aitbc.domain.money import Outcome, TokenPrices, Usage
from aitbc.domain.reputation import MinerStats
from aitbc.domain.retention import Plan
from aitbc.domain.signing import public_key_of
from aitbc.domain.states import JobState
from aitbc.domain.webhooks import DeliveryRecord, DeliveryStatus, WebhookRecord
from aitbc.store.base import (
    BlockBuilder,
    HoldRequest,
    JobChanges,
    JobMovedOnError,
    MinerRecord,
    ReceiptDraft,
    SettleRequest,
    Store,
)
from aitbc.store.result_records import ShareLinkRecord
from tests.store.test_sqlite_store import NOW, _event

SEED = bytes(range(32))
HASH = hashlib.sha256(b"text").hexdigest()
STAMP = "2026-01-24T15:00:00Z"
BUILD: BlockBuilder = lambda previous, transactions, receipts: seal_block(  # noqa: E731
    previous=previous, time=STAMP, transactions=transactions, receipts=receipts, coordinator_seed=SEED
)


def job(job_id: str, owner: str = "owner", minutes: int = 0, key: str = "") -> JobRecord:
    spec = JobSpec(prompt="p", model="m", params=SamplingParams(), idempotency_key=key)
    at = NOW + timedelta(minutes=minutes)
    return JobRecord(job_id, owner, JobState.PENDING, spec, at, at)


async def finish(store: Store, job_id: str, settle: SettleRequest | None = None, seq: int = 2) -> JobRecord | None:
    return await store.transition(
        job_id,
        from_states={JobState.PENDING, JobState.RUNNING},
        attempt=0,
        to=JobState.COMPLETED,
        changes=JobChanges(result="done", completion_tokens=7, completed_at=NOW + timedelta(hours=1)),
        now=NOW + timedelta(hours=1),
        event=_event(job_id, seq, JobState.COMPLETED),
        settle=settle,
    )


async def test_pages_are_keyset_pages_newest_first(store: Store) -> None:
    for n in range(5):
        await store.create_job(job(f"job_{n}", minutes=n), _event(f"job_{n}", 1))
    await store.create_job(job("job_x", owner="other"), _event("job_x", 1))
    seen, token = [], ""
    while True:
        page = await store.list_jobs(owner_id="owner", state=None, limit=2, page_token=token)
        seen += [found.job_id for found in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["job_4", "job_3", "job_2", "job_1", "job_0"]
    assert [found.job_id for found in await store.unfinished_jobs()][:2] == ["job_0", "job_x"]


async def test_unfinished_events_come_in_one_read_by_job_in_sequence(store: Store) -> None:
    for job_id in ("job_b", "job_a", "job_done"):
        await store.create_job(replace(job(job_id), state=JobState.RUNNING), _event(job_id, 1))
    await store.append_events([_event("job_a", 3, None, "lo"), _event("job_a", 2, None, "hel")])
    await finish(store, "job_done")
    events = await store.unfinished_events()
    assert sorted(events) == ["job_a", "job_b"]  # a finished job's events are not read at start-up
    assert [(event.seq, event.text) for event in events["job_a"]] == [(1, ""), (2, "hel"), (3, "lo")]
    assert events["job_b"] == await store.events("job_b")


async def test_an_idempotency_key_stores_one_job(store: Store) -> None:
    first = await store.create_job(job("job_a", key="k"), _event("job_a", 1))
    again = await store.create_job(job("job_b", key="k"), _event("job_b", 1))
    assert again.job_id == first.job_id == "job_a"
    assert await store.get_job("job_b") is None
    assert await store.job_by_idempotency_key("owner", "k") == first
    other = await store.create_job(job("job_c", owner="other", key="k"), _event("job_c", 1))
    assert other.job_id == "job_c"


async def test_miners_are_saved_whole(store: Store) -> None:
    stats = MinerStats(completions=2.5, failures=1.0, tokens_per_second=12.0, updated_at=NOW)
    miner = MinerRecord("m1", "acct", stats, NOW, ("tiny", "m"), "llama")
    await store.save_miners([miner])
    assert await store.miners() == [miner]
    moved = MinerRecord("m1", "acct", MinerStats(), NOW + timedelta(hours=1), ("x",), "echo")
    other = MinerRecord("m2", "acct", MinerStats(), NOW, ("x",), "echo")
    await store.save_miners([moved, other])
    assert await store.miners() == [moved, other]
    assert await store.miner("m1") == moved
    assert await store.miner("m3") is None


async def test_settled_jobs_issue_receipts_that_blocks_seal(store: Store) -> None:
    assert (await store.ledger_stats()).height == -1
    genesis = await store.seal_block(BUILD, max_transactions=10, now=NOW)
    assert genesis is not None
    assert await store.seal_block(BUILD, max_transactions=10, now=NOW) is None  # nothing new
    await store.credit("owner", 10_000, tx_id="mint:1", now=NOW)
    for n in range(3):
        await store.create_job(job(f"job_{n}"), _event(f"job_{n}", 1), HoldRequest("owner", 1_000, TokenPrices(1, 2)))
        draft = ReceiptDraft(
            f"job_{n}",
            1,
            address_of("owner"),
            address_of("miner"),
            "m",
            HASH,
            HASH,
            STAMP,
            STAMP,
            coordinator_seed=SEED,
        )

        def drafted(issued: ReceiptDraft = draft) -> ReceiptDraft:
            return issued

        settle = SettleRequest(Outcome.COMPLETED, Usage(10, 100), 500, "miner", receipt=drafted)
        finished = await finish(store, f"job_{n}", settle)
        assert finished is not None
        assert finished.receipt_id == f"rcpt_{n}"
    assert await finish(store, "job_0") is None  # settled once
    receipts = await store.receipts(client=None, limit=10)
    assert [receipt.receipt_id for receipt in receipts] == ["rcpt_2", "rcpt_1", "rcpt_0"]
    assert await store.receipt("rcpt_1") == receipts[1]
    assert [seq for seq, _ in await store.receipts_before(before_seq=3, limit=5)] == [2, 1]
    first = await store.seal_block(BUILD, max_transactions=4, now=NOW)  # mint, hold, settle, hold
    second = await store.seal_block(BUILD, max_transactions=4, now=NOW)
    assert first is not None
    assert second is not None
    assert [len(first.receipts), len(second.receipts)] == [1, 2]
    assert await store.receipt_block("rcpt_0") == 1
    assert await store.receipt_block("rcpt_2") == 2
    blocks = await store.blocks()
    assert [block.height for block in blocks] == [0, 1, 2]
    assert verify_chain(blocks, coordinator_key=public_key_of(SEED)).ok
    assert [block.height for block in await store.blocks(from_height=1, limit=1)] == [1]
    stats = await store.ledger_stats()
    assert (stats.height, stats.transactions, stats.receipts, stats.minted, stats.held) == (2, 7, 3, 10_000, 0)
    assert [entry.seq for entry in await store.ledger_before(before_seq=None, limit=2)] == [7, 6]
    totals = await store.job_totals(since=[NOW, NOW + timedelta(days=1)])
    assert (totals.submitted, totals.completed, totals.tokens_served) == (3, 3, 21)
    assert [(window.jobs_completed, window.tokens) for window in totals.windows] == [(3, 21), (0, 0)]


async def test_a_terminal_transition_fills_the_outbox(store: Store) -> None:
    hook = WebhookRecord("wh_1", "owner", "https://example.com/h", ("job.completed",), "secret", NOW)
    await store.create_webhook(hook)
    await store.create_webhook(WebhookRecord("wh_2", "other", "https://e.com", ("job.completed",), "s", NOW))
    await store.create_webhook(WebhookRecord("wh_3", "owner", "https://e.com", ("job.failed",), "s", NOW))
    assert await store.webhooks("owner") == [hook, await store.webhook("wh_3")]
    assert len(await store.webhooks(None)) == 3
    await store.create_job(job("job_1"), _event("job_1", 1))
    await finish(store, "job_1")
    [(delivery, webhook)] = await store.due_deliveries(NOW + timedelta(hours=2), 10)
    assert webhook == hook
    assert (delivery.event, delivery.job_id, delivery.status) == ("job.completed", "job_1", DeliveryStatus.PENDING)
    assert delivery.delivery_id.startswith("evt_")
    payload = json.loads(delivery.payload)
    assert payload["type"] == "job.completed"
    assert payload["created_at"] == "2026-01-24T16:00:00.000Z"
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["usage"] == {"prompt_tokens": 0, "completion_tokens": 7}
    assert payload["data"]["completed_at"] == "2026-01-24T16:00:00.000Z"
    assert await store.next_delivery_at() == NOW + timedelta(hours=1)
    await store.record_delivery_attempt(
        delivery.delivery_id,
        status=DeliveryStatus.DELIVERED,
        status_code=200,
        latency_ms=5,
        error="",
        next_attempt_at=None,
        now=NOW + timedelta(hours=2),
    )
    [done] = await store.deliveries("wh_1", 10)
    assert (done.status, done.attempts, done.delivered_at) == (DeliveryStatus.DELIVERED, 1, NOW + timedelta(hours=2))
    assert await store.next_delivery_at() is None
    test_event = DeliveryRecord(
        "evt_t", "wh_1", "webhook.test", "", '{"type":"webhook.test"}', DeliveryStatus.PENDING, NOW
    )
    await store.enqueue_delivery(test_event)
    assert await store.next_delivery_at() == NOW
    assert await store.prune_deliveries(NOW + timedelta(days=1)) == 1  # the delivered one; pending stays
    assert await store.delete_webhook("wh_1")
    assert not await store.delete_webhook("wh_1")
    assert await store.due_deliveries(NOW + timedelta(days=1), 10) == []


async def test_results_checksums_links_plans_and_deletion(store: Store) -> None:
    await store.create_job(replace(job("job_1"), state=JobState.RUNNING), _event("job_1", 1))
    await store.append_events([JobEvent("job_1", 2, NOW, EventKind.TOKENS, text="secret", token_count=1)])
    assert await store.delete_result("job_1", NOW) is None  # not finished
    await finish(store, "job_1", seq=3)
    recorded = await store.record_checksums("job_1", {"result.txt": "ab"}, NOW)
    assert await store.record_checksums("job_1", {"result.txt": "cd"}, NOW + timedelta(hours=1)) == recorded
    assert await store.result_checksums("job_1") == recorded
    link = ShareLinkRecord("sh_1", "hash", "job_1", "owner", NOW, NOW + timedelta(days=1))
    await store.add_share_link(link)
    assert await store.share_link("hash") == link
    assert await store.share_links("job_1") == [link]
    await store.set_account_plan("owner", Plan.PRO, NOW)
    await store.set_account_plan("owner", Plan.ENTERPRISE, NOW)
    assert await store.account_plans() == {"owner": Plan.ENTERPRISE}
    retention = {Plan.FREE: timedelta(days=1), Plan.PRO: timedelta(days=30), Plan.ENTERPRISE: timedelta(days=2)}
    assert await store.expired_results(NOW + timedelta(days=1, hours=2), retention, Plan.FREE, 10) == []
    assert await store.expired_results(NOW + timedelta(days=3), retention, Plan.FREE, 10) == ["job_1"]
    deleted = await store.delete_result("job_1", NOW + timedelta(days=3))
    assert deleted is not None
    assert (deleted.result, deleted.spec.prompt, deleted.result_deleted_at) == ("", "", NOW + timedelta(days=3))
    assert [event.text for event in await store.events("job_1")] == ["", "", ""]
    revoked = await store.revoke_share_link("sh_1", NOW + timedelta(days=4))
    assert revoked is not None
    assert revoked.revoked_at == NOW + timedelta(days=3)  # revoked with the result, once
    assert await store.revoke_share_link("sh_missing", NOW) is None


async def test_output_is_fenced_by_the_attempt_on_a_miner(store: Store) -> None:
    """Several coordinators share a PostgreSQL store; one whose job was taken over must not add to it."""
    await store.create_job(job("job_1"), _event("job_1", 1))
    tokens = JobEvent("job_1", 2, NOW, EventKind.TOKENS, text="early", token_count=1, attempt=0)
    with pytest.raises(JobMovedOnError):
        await store.append_events([tokens])  # pending: on no miner
    assigned = await store.transition(
        "job_1",
        from_states={JobState.PENDING},
        attempt=0,
        to=JobState.ASSIGNED,
        changes=JobChanges(miner_id="m", attempt=1, replica_id="r1"),
        now=NOW,
        event=_event("job_1", 2, JobState.ASSIGNED),
    )
    assert assigned is not None
    assert assigned.attempt == 1
    await store.append_events([replace(tokens, seq=3, attempt=1, text="ok")])
    with pytest.raises(JobMovedOnError):
        await store.append_events([replace(tokens, seq=4, attempt=0, text="stale attempt")])
    with pytest.raises(JobMovedOnError):
        await store.append_events([replace(tokens, seq=3, attempt=1, text="taken sequence number")])
    assert [event.text for event in await store.events("job_1")] == ["", "", "ok"]


async def test_a_transition_whose_sequence_number_is_taken_changes_nothing(store: Store) -> None:
    """A coordinator whose copy of the job is behind loses the race for its next event, as for its state."""
    await store.create_job(replace(job("job_1"), state=JobState.RUNNING), _event("job_1", 1))
    await store.append_events([JobEvent("job_1", 2, NOW, EventKind.TOKENS, text="x", token_count=1)])
    behind = await store.transition(
        "job_1",
        from_states={JobState.RUNNING},
        attempt=0,
        to=JobState.CANCELED,
        changes=JobChanges(error="late copy"),
        now=NOW,
        event=_event("job_1", 2, JobState.CANCELED),
    )
    assert behind is None
    stored = await store.get_job("job_1")
    assert stored is not None
    assert stored.state is JobState.RUNNING
    assert stored.error == ""
    assert [event.seq for event in await store.events("job_1")] == [1, 2]
