"""Balances: the pure fold of ledger transactions, and the invariants it keeps.

Applying a transaction either yields new balances or raises a `LedgerError`
naming the transaction; the old balances are untouched. The invariants:

* no account but the issuer ever has a negative available or held amount;
* each account's held amount is the sum of its jobs' open holds;
* a job is held once and closed (released or settled) once, for its whole hold;
* the sum over all accounts is zero, and over all but the issuer it equals
  the credits minted (conservation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aitbc.domain.ledger import MINT_ADDRESS, Bucket, InsufficientFunds, LedgerError, Transaction, TxKind


@dataclass(frozen=True, slots=True)
class AccountBalance:
    available: int = 0
    held: int = 0

    @property
    def balance(self) -> int:
        return self.available + self.held


@dataclass(frozen=True, slots=True)
class OpenHold:
    account: str
    amount: int


_EMPTY = AccountBalance()


@dataclass(frozen=True, slots=True, eq=False)
class Balances:
    """Every account's balance, the open holds by job, the jobs already closed, and the credits minted."""

    accounts: Mapping[str, AccountBalance] = field(default_factory=lambda: MappingProxyType({}))
    open_holds: Mapping[str, OpenHold] = field(default_factory=lambda: MappingProxyType({}))
    closed_jobs: frozenset[str] = frozenset()
    minted: int = 0

    def of(self, account: str) -> AccountBalance:
        return self.accounts.get(account, _EMPTY)

    def available(self, account: str) -> int:
        return self.of(account).available

    def held(self, account: str) -> int:
        return self.of(account).held

    def balance(self, account: str) -> int:
        return self.of(account).balance

    def nonzero(self) -> dict[str, AccountBalance]:
        """The accounts holding anything: what two ledgers must agree on."""
        return {account: value for account, value in self.accounts.items() if value != _EMPTY}

    def apply(self, *transactions: Transaction) -> Balances:
        return self.apply_all(transactions)

    def apply_all(self, transactions: Iterable[Transaction]) -> Balances:
        fold = _Fold(self)
        for transaction in transactions:
            fold.apply(transaction)
        return fold.freeze()

    def check_invariants(self) -> None:
        """Raise a `LedgerError` naming the first invariant that does not hold."""
        held_by_account: dict[str, int] = {}
        for open_hold in self.open_holds.values():
            held_by_account[open_hold.account] = held_by_account.get(open_hold.account, 0) + open_hold.amount
        for account, value in sorted(self.accounts.items()):
            if account != MINT_ADDRESS and (value.available < 0 or value.held < 0):
                raise LedgerError("negative balance", account=account, expected=">= 0", found=value)
            if value.held != held_by_account.get(account, 0):
                raise LedgerError(
                    "held amount is not the sum of open holds",
                    account=account,
                    expected=held_by_account.get(account, 0),
                    found=value.held,
                )
        total = sum(value.balance for value in self.accounts.values())
        if total != 0:
            raise LedgerError("balances do not sum to zero", expected=0, found=total)
        circulating = total - self.balance(MINT_ADDRESS)
        if circulating != self.minted:
            raise LedgerError("balances and holds differ from credits minted", expected=self.minted, found=circulating)


class _Fold:
    """Mutable working copy for one `apply_all`, so a long replay is linear, not quadratic."""

    def __init__(self, start: Balances) -> None:
        self.accounts = dict(start.accounts)
        self.open_holds = dict(start.open_holds)
        self.closed_jobs = set(start.closed_jobs)
        self.minted = start.minted

    def freeze(self) -> Balances:
        return Balances(
            accounts=MappingProxyType(self.accounts),
            open_holds=MappingProxyType(self.open_holds),
            closed_jobs=frozenset(self.closed_jobs),
            minted=self.minted,
        )

    def apply(self, tx: Transaction) -> None:
        if tx.kind is TxKind.HOLD:
            self._check_new_hold(tx)
        elif tx.kind in (TxKind.RELEASE, TxKind.SETTLE):
            self._check_closes_hold(tx)
        # All checks come first: a refused transaction leaves the fold as it was.
        for posting in tx.postings:
            current = self.accounts.get(posting.account, _EMPTY)
            if posting.bucket is Bucket.AVAILABLE:
                self.accounts[posting.account] = AccountBalance(current.available + posting.amount, current.held)
            else:
                self.accounts[posting.account] = AccountBalance(current.available, current.held + posting.amount)
        if tx.kind is TxKind.MINT:
            self.minted += tx.amount
        elif tx.kind is TxKind.HOLD:
            assert tx.job_id is not None  # every non-mint kind names its job (Transaction checks)
            self.open_holds[tx.job_id] = OpenHold(tx.postings[0].account, tx.amount)
        else:
            assert tx.job_id is not None
            del self.open_holds[tx.job_id]
            self.closed_jobs.add(tx.job_id)

    def _check_new_hold(self, tx: Transaction) -> None:
        assert tx.job_id is not None
        if tx.job_id in self.open_holds or tx.job_id in self.closed_jobs:
            state = "an open hold" if tx.job_id in self.open_holds else "been settled"
            raise LedgerError(f"job {tx.job_id!r} already has {state}", tx_id=tx.tx_id)
        client = tx.postings[0].account
        available = self.accounts.get(client, _EMPTY).available
        if available < tx.amount:
            raise InsufficientFunds(
                f"hold of {tx.amount} µcr exceeds the available {available} µcr",
                tx_id=tx.tx_id,
                account=client,
                expected=f">= {tx.amount}",
                found=available,
            )

    def _check_closes_hold(self, tx: Transaction) -> None:
        assert tx.job_id is not None
        open_hold = self.open_holds.get(tx.job_id)
        if open_hold is None:
            state = "was already settled" if tx.job_id in self.closed_jobs else "has no hold"
            raise LedgerError(f"job {tx.job_id!r} {state}", tx_id=tx.tx_id)
        found = OpenHold(tx.postings[0].account, tx.amount)
        if found != open_hold:
            raise LedgerError(
                f"job {tx.job_id!r}'s hold is closed for a different account or amount",
                tx_id=tx.tx_id,
                account=found.account,
                expected=open_hold,
                found=found,
            )
