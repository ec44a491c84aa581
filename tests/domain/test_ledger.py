from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.accounts import address_of
from aitbc.domain.balances import AccountBalance, Balances, OpenHold
from aitbc.domain.errors import AitbcError
from aitbc.domain.ledger import (
    MINT_ADDRESS,
    NETWORK_FEE_ADDRESS,
    Bucket,
    InsufficientFunds,
    LedgerError,
    Posting,
    Transaction,
    TxKind,
    closing_transaction,
    hold,
    mint,
    release,
    settle,
)
from aitbc.domain.money import Outcome, TokenPrices, Usage
from aitbc.domain.money import settle as settle_money

ALICE, BOB, MINER = address_of("alice"), address_of("bob"), address_of("miner-1")
PRICES = TokenPrices(1_000, 2_000)


def funded(amount: int = 10_000) -> Balances:
    return Balances().apply(mint("mint-1", ALICE, amount))


def test_a_mint_credits_the_account_from_the_issuer() -> None:
    balances = funded(10_000)
    assert balances.available(ALICE) == 10_000
    assert balances.balance(MINT_ADDRESS) == -10_000
    assert balances.minted == 10_000
    balances.check_invariants()


def test_a_hold_moves_available_to_held_and_a_settle_pays_miner_and_fee() -> None:
    balances = funded(10_000).apply(hold("job-1", ALICE, 3_000))
    assert balances.of(ALICE) == AccountBalance(available=7_000, held=3_000)
    assert balances.open_holds["job-1"] == OpenHold(ALICE, 3_000)

    settlement = settle_money(Outcome.COMPLETED, hold=3_000, usage=Usage(1_000, 500), prices=PRICES, fee_bps=500)
    balances = balances.apply(settle("job-1", client=ALICE, miner=MINER, settlement=settlement))
    assert balances.of(ALICE) == AccountBalance(available=10_000 - 2_000, held=0)
    assert balances.available(MINER) == 1_900
    assert balances.available(NETWORK_FEE_ADDRESS) == 100
    assert "job-1" in balances.closed_jobs
    assert not balances.open_holds
    balances.check_invariants()


def test_a_release_gives_the_whole_hold_back() -> None:
    balances = funded().apply(hold("job-1", ALICE, 3_000), release("job-1", ALICE, 3_000))
    assert balances.of(ALICE) == AccountBalance(10_000, 0)
    balances.check_invariants()


def test_a_hold_beyond_the_available_balance_is_insufficient_funds() -> None:
    balances = funded(1_000)
    with pytest.raises(InsufficientFunds, match="hold of 1001 µcr exceeds the available 1000 µcr") as raised:
        balances.apply(hold("job-1", ALICE, 1_001))
    assert (raised.value.tx_id, raised.value.account) == ("hold:job-1", ALICE)
    assert balances.available(ALICE) == 1_000  # untouched


def test_a_job_is_held_once_and_settled_once() -> None:
    settlement = settle_money(Outcome.COMPLETED, hold=3_000, usage=Usage(10, 10), prices=PRICES, fee_bps=0)
    closing = settle("job-1", client=ALICE, miner=MINER, settlement=settlement)
    held = funded().apply(hold("job-1", ALICE, 3_000))
    with pytest.raises(LedgerError, match="already has an open hold"):
        held.apply(hold("job-1", ALICE, 1, tx_id="hold:again"))
    done = held.apply(closing)
    with pytest.raises(LedgerError, match="was already settled"):
        done.apply(release("job-1", ALICE, 3_000))
    with pytest.raises(LedgerError, match="already has been settled"):
        done.apply(hold("job-1", ALICE, 1, tx_id="hold:later"))
    with pytest.raises(LedgerError, match="has no hold"):
        funded().apply(closing)


def test_closing_a_hold_for_another_amount_or_account_is_refused() -> None:
    held = funded().apply(hold("job-1", ALICE, 3_000))
    with pytest.raises(LedgerError, match="different account or amount") as raised:
        held.apply(release("job-1", ALICE, 2_999))
    assert raised.value.expected == OpenHold(ALICE, 3_000)
    assert raised.value.found == OpenHold(ALICE, 2_999)
    with pytest.raises(LedgerError, match="different account or amount"):
        held.apply(release("job-1", BOB, 3_000))


def test_postings_must_sum_to_zero() -> None:
    with pytest.raises(LedgerError, match="'t1': postings sum to 1, not zero") as raised:
        Transaction(
            "t1", TxKind.MINT, (Posting(MINT_ADDRESS, Bucket.AVAILABLE, -1), Posting(ALICE, Bucket.AVAILABLE, 2))
        )
    assert (raised.value.expected, raised.value.found) == (0, 1)


@pytest.mark.parametrize(
    ("kind", "postings", "job_id", "problem"),
    [
        (TxKind.MINT, ((BOB, Bucket.AVAILABLE, -5), (ALICE, Bucket.AVAILABLE, 5)), None, "from the issuer"),
        (TxKind.MINT, ((MINT_ADDRESS, Bucket.AVAILABLE, -5), (ALICE, Bucket.AVAILABLE, 5)), "j", "for no job"),
        (TxKind.MINT, ((MINT_ADDRESS, Bucket.AVAILABLE, 0), (ALICE, Bucket.AVAILABLE, 0)), None, "a mint of nothing"),
        (TxKind.HOLD, ((ALICE, Bucket.AVAILABLE, -5), (BOB, Bucket.HELD, 5)), "j", "one client's own credits"),
        (TxKind.HOLD, ((ALICE, Bucket.AVAILABLE, 5), (ALICE, Bucket.HELD, -5)), "j", "posting 0 of a hold must debit"),
        (TxKind.RELEASE, ((ALICE, Bucket.AVAILABLE, -5), (ALICE, Bucket.AVAILABLE, 5)), "j", "must debit held"),
        (
            TxKind.HOLD,
            ((ALICE, Bucket.AVAILABLE, -5), (ALICE, Bucket.HELD, 3), (ALICE, Bucket.HELD, 2)),
            "j",
            "a hold has 2 postings, got 3",
        ),
        (
            TxKind.SETTLE,
            (
                (ALICE, Bucket.HELD, -5),
                (ALICE, Bucket.AVAILABLE, 1),
                (MINER, Bucket.AVAILABLE, 3),
                (BOB, Bucket.AVAILABLE, 1),
            ),
            "j",
            "network fee account",
        ),
    ],
)
def test_each_kind_has_one_shape(
    kind: TxKind, postings: tuple[tuple[str, Bucket, int], ...], job_id: str | None, problem: str
) -> None:
    with pytest.raises((LedgerError, AitbcError), match=problem):
        Transaction("t", kind, tuple(Posting(*posting) for posting in postings), job_id)


def test_a_hold_must_name_its_job() -> None:
    with pytest.raises(AitbcError, match="job_id"):
        Transaction("t", TxKind.HOLD, (Posting(ALICE, Bucket.AVAILABLE, -5), Posting(ALICE, Bucket.HELD, 5)))


def test_postings_name_accounts_by_lowercase_address() -> None:
    with pytest.raises(AitbcError, match=r"posting\.account: has no '1' separator"):
        Posting("alice", Bucket.AVAILABLE, 1)
    with pytest.raises(AitbcError, match="lowercase"):
        Posting(ALICE.upper(), Bucket.AVAILABLE, 1)


def test_transactions_round_trip_through_json_and_hash_their_canonical_bytes() -> None:
    settlement = settle_money(Outcome.COMPLETED, hold=3_000, usage=Usage(1_000, 500), prices=PRICES, fee_bps=500)
    tx = settle("job-1", client=ALICE, miner=MINER, settlement=settlement)
    assert Transaction.from_json(tx.to_json()) == tx
    assert tx.canonical_bytes().startswith(b'{"job_id":"job-1","kind":"settle","postings":[{"account":"ait1')
    assert len(tx.tx_hash) == 64
    assert tx.settled() == (ALICE, MINER, 3_000, 2_000, 1_900, 100)
    with pytest.raises(AitbcError, match="kind: must be one of"):
        Transaction.from_json({**tx.to_json(), "kind": "burn"})
    with pytest.raises(AitbcError, match=r"postings\[0\]\.bucket"):
        Transaction.from_json({**tx.to_json(), "postings": [{"account": ALICE, "bucket": "x", "amount": 1}]})


def test_the_closing_transaction_is_a_release_when_nothing_is_charged() -> None:
    nothing = settle_money(Outcome.EXPIRED, hold=3_000, usage=Usage(0, 0), prices=PRICES, fee_bps=500)
    closing = closing_transaction("job-1", client=ALICE, miner=None, settlement=nothing)
    assert (closing.kind, closing.tx_id, closing.amount) == (TxKind.RELEASE, "settle:job-1", 3_000)
    paid = settle_money(Outcome.COMPLETED, hold=3_000, usage=Usage(10, 10), prices=PRICES, fee_bps=500)
    assert closing_transaction("job-1", client=ALICE, miner=MINER, settlement=paid).kind is TxKind.SETTLE
    with pytest.raises(ValueError, match="no miner to pay"):
        closing_transaction("job-1", client=ALICE, miner=None, settlement=paid)


CLIENTS = [address_of(f"client-{n}") for n in range(3)]
MINERS = [address_of(f"miner-{n}") for n in range(2)]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("mint"), st.sampled_from(CLIENTS + MINERS), st.integers(1, 50_000)),
        st.tuples(st.just("hold"), st.sampled_from(CLIENTS), st.integers(0, 100), st.integers(0, 100)),
        st.tuples(
            st.just("close"),
            st.integers(0, 30),
            st.sampled_from(Outcome),
            st.sampled_from(MINERS),
            st.integers(0, 150),
            st.integers(0, 150),
        ),
    ),
    max_size=60,
)


@given(
    st.lists(st.integers(1, 3_000), min_size=len(CLIENTS), max_size=len(CLIENTS)), operations, st.integers(0, 10_000)
)
def test_random_mints_holds_settlements_and_releases_conserve_money(
    funds: list[int], ops: list[tuple[object, ...]], fee_bps: int
) -> None:
    balances, jobs, minted = Balances(), 0, 0
    holds: dict[str, tuple[str, int]] = {}  # job -> (client, hold)
    # Some money first, so that most holds apply and some run out of it.
    for op in [("mint", client, amount) for client, amount in zip(CLIENTS, funds, strict=True)] + ops:
        match op:
            case ("mint", str(account), int(amount)):
                tx = mint(f"mint-{minted}-{amount}-{account}", account, amount)
            case ("hold", str(client), int(prompt), int(max_tokens)):
                amount = (prompt * PRICES.input_per_1k + max_tokens * PRICES.output_per_1k + 999) // 1000
                job = f"job-{jobs}"
                jobs += 1
                tx = hold(job, client, amount)
            case ("close", int(which), Outcome() as outcome, str(miner), int(prompt), int(completion)):
                # A job held before (open, or closed already), or one never held.
                candidates = [*holds, "job-never-held"]
                job = candidates[which % len(candidates)]
                client, amount = holds.get(job, (CLIENTS[0], 1))
                usage = Usage(prompt, completion)
                settlement = settle_money(outcome, hold=amount, usage=usage, prices=PRICES, fee_bps=fee_bps)
                tx = closing_transaction(job, client=client, miner=miner, settlement=settlement)
            case _:
                raise AssertionError(op)
        try:
            after = balances.apply(tx)
        except LedgerError:
            continue  # refused (insufficient funds, no such hold, settled twice): nothing changed
        if tx.kind is TxKind.MINT:
            minted += tx.amount
        if tx.kind is TxKind.HOLD and tx.job_id is not None:
            holds[tx.job_id] = (tx.postings[0].account, tx.amount)
        balances = after
        balances.check_invariants()
        assert balances.minted == minted
        assert sum(value.balance for account, value in balances.accounts.items() if account != MINT_ADDRESS) == minted
        assert all(value.available >= 0 for account, value in balances.accounts.items() if account != MINT_ADDRESS)
