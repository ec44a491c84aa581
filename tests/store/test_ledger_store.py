"""The store's side of money: a hold commits with its job, a settlement with the terminal state, each once.

On both stores: `store` (tests/store/conftest.py) is parametrised over SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from aitbc.domain.accounts import NETWORK_FEE_ACCOUNT_ID, address_of
from aitbc.domain.balances import Balances
from aitbc.domain.ledger import TxKind
from aitbc.domain.money import Outcome, TokenPrices, Usage
from aitbc.domain.states import JobState
from aitbc.store.base import HoldRequest, InsufficientFundsError, JobChanges, SettleRequest, Store
from tests.store.test_sqlite_store import NOW, _event, _job
from tests.support.stores import raw_rows

PRICES = TokenPrices(1_000, 2_000)
SETTLE = SettleRequest(Outcome.COMPLETED, Usage(10, 100), fee_bps=500, miner_account_id="miner")


async def complete(store: Store, job_id: str, attempt: int = 0) -> bool:
    updated = await store.transition(
        job_id,
        from_states={JobState.PENDING},
        attempt=attempt,
        to=JobState.COMPLETED,
        changes=JobChanges(),
        now=NOW,
        event=_event(job_id, 2, JobState.COMPLETED),
        settle=SETTLE,
    )
    return updated is not None


async def test_a_hold_commits_with_its_job_or_not_at_all(store: Store) -> None:
    await store.credit("owner", 300, tx_id="mint:1", now=NOW)
    with pytest.raises(InsufficientFundsError) as caught:
        await store.create_job(_job("job_1"), _event("job_1", 1), HoldRequest("owner", 301, PRICES))
    assert (caught.value.needed, caught.value.available) == (301, 300)
    assert await store.get_job("job_1") is None
    await store.create_job(_job("job_2"), _event("job_2", 1), HoldRequest("owner", 300, PRICES))
    owner = await store.account("owner")
    assert (owner.available, owner.held, owner.balance, owner.address) == (0, 300, 300, address_of("owner"))
    assert await raw_rows(store, "SELECT job_id, amount FROM holds") == [("job_2", 300)]


async def test_settlement_applies_once_with_the_terminal_state(store: Store) -> None:
    await store.credit("owner", 1_000, tx_id="mint:1", now=NOW)
    await store.create_job(_job(), _event("job_1", 1), HoldRequest("owner", 500, PRICES))
    assert await complete(store, "job_1")
    assert not await complete(store, "job_1")  # the compare-and-set refuses a second terminal transition
    # 10 prompt + 100 completion tokens: (10000 + 200000) / 1000 = 210 µcr; the fee is 5% of it.
    accounts = {record.account_id: record for record in await store.accounts()}
    assert (accounts["owner"].available, accounts["owner"].held, accounts["owner"].spent) == (790, 0, 210)
    assert (accounts["miner"].available, accounts[NETWORK_FEE_ACCOUNT_ID].available) == (200, 10)
    ledger = await store.ledger()
    assert [entry.transaction.kind for entry in ledger] == [TxKind.MINT, TxKind.HOLD, TxKind.SETTLE]
    assert [entry.seq for entry in ledger] == [1, 2, 3]
    assert [entry.seq for entry in await store.ledger(after_seq=1, limit=1)] == [2]
    Balances().apply(*(entry.transaction for entry in ledger)).check_invariants()


async def test_a_settlement_without_a_hold_or_a_miner_charges_nothing(store: Store) -> None:
    await store.create_job(_job("free"), _event("free", 1))
    assert await complete(store, "free")
    assert await store.ledger() == []
    await store.credit("owner", 500, tx_id="mint:1", now=NOW)
    await store.create_job(_job("orphan"), _event("orphan", 1), HoldRequest("owner", 500, PRICES))
    updated = await store.transition(
        "orphan",
        from_states={JobState.PENDING},
        attempt=0,
        to=JobState.CANCELED,
        changes=JobChanges(),
        now=NOW,
        event=_event("orphan", 2, JobState.CANCELED),
        settle=SettleRequest(Outcome.CANCELED, Usage(0, 50), fee_bps=500, miner_account_id=None),
    )
    assert updated is not None
    owner = await store.account("owner")
    assert (owner.available, owner.held, owner.spent) == (500, 0, 0)
    assert (await store.ledger())[-1].transaction.kind is TxKind.RELEASE


async def test_a_credit_id_applies_once(store: Store) -> None:
    for _ in range(2):
        account = await store.credit("owner", 5, tx_id="mint:owner:a", now=NOW)
    assert account.available == 5
    assert (await store.account("never-seen")).balance == 0
