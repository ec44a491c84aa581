"""Holds and settlement through the coordinator's parts: a real SQLite file, a ManualClock, no gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.coordinator.miners import Assign, Cancel, MinerInfo, MinerSession
from aitbc.domain.accounts import NETWORK_FEE_ACCOUNT_ID, address_of
from aitbc.domain.balances import Balances
from aitbc.domain.canonical import text_hash
from aitbc.domain.catalog import ModelEntry
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.jobs import JobSpec, SamplingParams
from aitbc.domain.keys import Principal, Role
from aitbc.domain.ledger import TxKind
from aitbc.domain.states import JobState
from aitbc.domain.verify import verify_receipt
from aitbc.store.base import AccountRecord, Store
from tests.conftest import TEST_CATALOG
from tests.coordinator.test_parts import ADMIN, CLIENT, MINER, next_command, started

# 1000 µcr per 1k prompt tokens, 2000 per 1k completion tokens: easy sums.
PRICED = ModelEntry("priced", price_input_per_1k=1_000, price_output_per_1k=2_000)
CONFIG = CoordinatorConfig(catalog=TEST_CATALOG.merged([PRICED]), fee_bps=500)
# "hello" is estimated at 2 prompt tokens: the hold of max_tokens=100 is (2 * 1000 + 100 * 2000) / 1000.
HOLD = 202


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def coordinator(store: Store, clock: ManualClock) -> AsyncIterator[Coordinator]:
    async with started(store, clock, CONFIG) as coordinator:
        yield coordinator


def priced_spec(max_tokens: int = 100) -> JobSpec:
    return JobSpec.build(prompt="hello", model="priced", params=SamplingParams.build(max_tokens=max_tokens))


async def attached(coordinator: Coordinator, miner_id: str = "miner-1") -> MinerSession:
    session = await coordinator.attach_miner(
        MINER, MinerInfo(miner_id=miner_id, models=frozenset({"priced"}), max_concurrency=1)
    )
    await next_command(session)  # the welcome
    return session


async def balances(store: Store) -> dict[str, AccountRecord]:
    return {record.account_id: record for record in await store.accounts()}


async def check_ledger(store: Store) -> Balances:
    """Replaying the ledger gives the stored balances, and every invariant of docs/settlement.md holds."""
    replayed = Balances().apply(*(entry.transaction for entry in await store.ledger()))
    replayed.check_invariants()
    for record in await store.accounts():
        found = replayed.of(record.address)
        assert (record.available, record.held) == (found.available, found.held), record.account_id
    return replayed


async def test_a_job_the_account_cannot_cover_is_refused_and_nothing_is_stored(
    coordinator: Coordinator, store: Store
) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 200)
    with pytest.raises(AitbcError) as caught:
        await coordinator.submit(CLIENT, priced_spec(), queue_if_unavailable=True)
    assert caught.value.reason is Reason.INSUFFICIENT_FUNDS
    assert "(2 µcr) missing" in caught.value.message
    assert (await coordinator.list_jobs(CLIENT, state=None, limit=10, page_token="")).jobs == []
    assert [entry.transaction.kind for entry in await store.ledger()] == [TxKind.MINT]
    assert (await coordinator.account(CLIENT)).available == 200


async def test_a_free_job_needs_no_credits_and_writes_no_ledger(coordinator: Coordinator, store: Store) -> None:
    free = JobSpec.build(prompt="hello", model="tiny", params=SamplingParams.build(max_tokens=8))
    job = await coordinator.submit(CLIENT, free, queue_if_unavailable=True)
    await coordinator.cancel(CLIENT, job.job_id)
    assert await store.ledger() == []


async def test_completion_charges_real_counts_pays_the_miner_and_the_fee(
    coordinator: Coordinator, store: Store
) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    held = await coordinator.account(CLIENT)
    assert (held.available, held.held, held.balance) == (1_000 - HOLD, HOLD, 1_000)
    assert isinstance(await next_command(session), Assign)
    # 3 prompt + 50 completion tokens cost (3000 + 100000) / 1000 = 103 µcr; 5% of it is 5 (rounded down).
    await coordinator.reports.done(
        session, job.job_id, 1, output="x" * 50, prompt_tokens=3, completion_tokens=50, finish_reason="stop"
    )
    accounts = await balances(store)
    client = accounts[CLIENT.owner_id]
    assert (client.available, client.held, client.spent) == (897, 0, 103)
    assert (accounts[MINER.owner_id].available, accounts[MINER.owner_id].earned) == (98, 98)
    assert accounts[NETWORK_FEE_ACCOUNT_ID].available == 5
    kinds = [(entry.transaction.tx_id, entry.transaction.kind) for entry in await store.ledger()]
    assert kinds[1:] == [(f"hold:{job.job_id}", TxKind.HOLD), (f"settle:{job.job_id}", TxKind.SETTLE)]
    await check_ledger(store)
    # The receipt: signed by the coordinator, the job's output and counts, the settlement's amounts.
    finished = await coordinator.get(CLIENT, job.job_id)
    receipt, proof = await coordinator.receipt(finished.receipt_id)
    assert proof is None  # not sealed yet: no block interval has passed
    body = receipt.body
    assert (body.job_id, body.attempt, body.outcome, body.model) == (job.job_id, 1, "completed", "priced")
    assert (body.client, body.miner) == (address_of(CLIENT.owner_id), address_of(MINER.owner_id))
    assert (body.prompt_tokens, body.completion_tokens, body.charged, body.miner_earnings, body.fee) == (
        3,
        50,
        103,
        98,
        5,
    )
    assert (body.miner_signed, body.miner_signature) == (False, None)
    verification = verify_receipt(receipt, coordinator_key=coordinator.public_key, output_text="x" * 50)
    assert verification.ok, verification.checks
    assert verification.skipped == ("miner_signature", "block_signature", "inclusion_proof")
    assert [r.receipt_id for r in await coordinator.receipts(CLIENT, client="", limit=0)] == [finished.receipt_id]
    assert await coordinator.receipts(ADMIN, client=address_of("nobody"), limit=5) == []


async def test_cancel_charges_the_tokens_produced_and_not_the_prompt(coordinator: Coordinator, store: Store) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    await next_command(session)
    await coordinator.reports.started(session, job.job_id, 1, prompt_tokens=3)
    await coordinator.reports.tokens(session, job.job_id, 1, "so far", 10)
    cancel = asyncio.create_task(coordinator.cancel(CLIENT, job.job_id))
    assert isinstance(await next_command(session), Cancel)
    coordinator.reports.cancel_acknowledged(session, job.job_id, 1, 10)
    assert (await cancel).state is JobState.CANCELED
    client = await coordinator.account(CLIENT)
    assert (client.available, client.held, client.spent) == (980, 0, 20)  # 10 tokens at 2000 per 1k
    receipt, _ = await coordinator.receipt((await coordinator.get(CLIENT, job.job_id)).receipt_id)
    body = receipt.body
    assert (body.outcome, body.charged, body.output_hash) == ("canceled", 20, text_hash("so far"))
    await check_ledger(store)


async def test_expired_and_failed_jobs_charge_nothing(
    coordinator: Coordinator, store: Store, clock: ManualClock
) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    waiting = await coordinator.submit(CLIENT, priced_spec(), queue_if_unavailable=True)
    await clock.advance(waiting.spec.ttl.total_seconds() + 1)
    events = [event async for event in coordinator.watch(CLIENT, waiting.job_id)]  # ends with the final state
    assert events[-1].state is JobState.FAILED
    session = await attached(coordinator)
    failing = await coordinator.submit(CLIENT, priced_spec())
    await next_command(session)
    await coordinator.reports.tokens(session, failing.job_id, 1, "partial", 5)
    await coordinator.reports.failed(session, failing.job_id, 1, error="bad weights", retryable=False)
    client = await coordinator.account(CLIENT)
    assert (client.available, client.held, client.spent) == (1_000, 0, 0)
    closing = [entry.transaction.kind for entry in await store.ledger() if entry.transaction.tx_id.startswith("settle")]
    assert closing == [TxKind.RELEASE, TxKind.RELEASE]
    assert (await coordinator.get(CLIENT, failing.job_id)).receipt_id == ""  # nothing charged, no receipt
    with pytest.raises(AitbcError) as caught:
        await coordinator.receipt("rcpt_" + failing.job_id.removeprefix("job_"))
    assert caught.value.reason is Reason.RECEIPT_NOT_FOUND
    await check_ledger(store)


async def test_a_hold_survives_a_restart_and_settles_once(
    store: Store, clock: ManualClock, coordinator: Coordinator
) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    await next_command(session)
    await coordinator.shutdown(0)
    restarted = Coordinator(store, CONFIG, clock=clock)
    await restarted.start()
    try:
        assert (await restarted.account(CLIENT)).held == HOLD
        successor = await attached(restarted, "miner-2")
        assign = await next_command(successor)
        assert isinstance(assign, Assign)
        assert assign.attempt == 2
        await restarted.reports.done(
            successor, job.job_id, 2, output="ok", prompt_tokens=2, completion_tokens=1, finish_reason="stop"
        )
        client = await restarted.account(CLIENT)
        assert (client.held, client.spent) == (0, 4)  # (2000 + 2000) / 1000
    finally:
        await restarted.shutdown(0)
    await check_ledger(store)


async def test_only_an_admin_credits_and_reads_other_accounts(coordinator: Coordinator) -> None:
    with pytest.raises(AitbcError) as caught:
        await coordinator.credit(CLIENT, CLIENT.owner_id, 1)
    assert caught.value.reason is Reason.PERMISSION_DENIED
    other = Principal(key_id="c9", role=Role.CLIENT, owner_id="client-9")
    with pytest.raises(AitbcError):
        await coordinator.account(other, CLIENT.owner_id)
    for account, amount, field in (("mint", 1, "account"), ("", 1, "account"), ("a", 0, "amount")):
        with pytest.raises(AitbcError) as caught:
            await coordinator.credit(ADMIN, account, amount)
        assert (caught.value.reason, caught.value.field) == (Reason.INVALID_ARGUMENT, field)
    # The same credit id credits once.
    for _ in range(2):
        credited = await coordinator.credit(ADMIN, "acct", 7, credit_id="invoice-1")
    assert credited.available == 7
    assert (await coordinator.account(ADMIN, "acct")).address.startswith("ait1")
