"""Double-entry ledger transactions: postings that sum to zero, in four shapes.

Each account has two buckets, `available` and `held`; its balance is their
sum, so available = balance - held. Credits enter only by a mint from the
issuer account, whose balance is therefore minus everything ever minted: with
every transaction summing to zero, the balances of all other accounts (holds
included) always add up to the credits minted.

    mint     issuer.available -x,  account.available +x          (x > 0)
    hold     client.available -h,  client.held +h                (a job's maximum cost)
    release  client.held -h,       client.available +h          (the job charged nothing)
    settle   client.held -h,       client.available +(h - charge),
             miner.available +earnings,  network-fee.available +fee

Postings name accounts by address: blocks are public and an address reveals
no account id. A hold, release or settle names its job. Ids default to
"hold:<job>" and, for the one transaction that closes the hold (release or
settle), "settle:<job>": a store's unique key on the id then makes a second
settlement of a job impossible, and the `Balances` fold refuses one too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from aitbc.domain.accounts import MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID, address_of, parse_address
from aitbc.domain.canonical import canonical_json, require_int, require_text, sha256_hex
from aitbc.domain.errors import invalid_argument
from aitbc.domain.money import MAX_AMOUNT, Settlement

TRANSACTION_TYPE = "aitbc.transaction.v1"
MINT_ADDRESS = address_of(MINT_ACCOUNT_ID)
NETWORK_FEE_ADDRESS = address_of(NETWORK_FEE_ACCOUNT_ID)


class LedgerError(Exception):
    """A transaction that is malformed or cannot apply; names the transaction, account and amounts."""

    def __init__(
        self,
        message: str,
        *,
        tx_id: str | None = None,
        account: str | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        prefix = f"transaction {tx_id!r}: " if tx_id else ""
        super().__init__(prefix + message)
        self.tx_id = tx_id
        self.account = account
        self.expected = expected
        self.found = found


class InsufficientFunds(LedgerError):
    """A hold larger than the account's available balance."""


class Bucket(StrEnum):
    AVAILABLE = "available"
    HELD = "held"


class TxKind(StrEnum):
    MINT = "mint"
    HOLD = "hold"
    RELEASE = "release"
    SETTLE = "settle"


@dataclass(frozen=True, slots=True)
class Posting:
    account: str  # an ait1 address, lowercase
    bucket: Bucket
    amount: int  # signed µcr

    def __post_init__(self) -> None:
        if parse_address(self.account, field="posting.account") != self.account:
            raise invalid_argument("posting.account", "must be written in lowercase")
        require_int(self.amount, field="posting.amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "bucket": self.bucket.value, "amount": self.amount}


class SettledAmounts(NamedTuple):
    """What a settle transaction says, read back from its postings."""

    client: str
    miner: str
    hold: int
    charge: int
    miner_earnings: int
    fee: int


# The (bucket, sign) of each posting, in order, for each kind: sign +1 credit, -1 debit.
_SHAPES: dict[TxKind, tuple[tuple[Bucket, int], ...]] = {
    TxKind.MINT: ((Bucket.AVAILABLE, -1), (Bucket.AVAILABLE, 1)),
    TxKind.HOLD: ((Bucket.AVAILABLE, -1), (Bucket.HELD, 1)),
    TxKind.RELEASE: ((Bucket.HELD, -1), (Bucket.AVAILABLE, 1)),
    TxKind.SETTLE: ((Bucket.HELD, -1), (Bucket.AVAILABLE, 1), (Bucket.AVAILABLE, 1), (Bucket.AVAILABLE, 1)),
}


@dataclass(frozen=True, slots=True)
class Transaction:
    tx_id: str
    kind: TxKind
    postings: tuple[Posting, ...]
    job_id: str | None = None

    def __post_init__(self) -> None:
        require_text(self.tx_id, field="tx_id")
        total = sum(posting.amount for posting in self.postings)
        if total != 0:
            raise LedgerError(f"postings sum to {total}, not zero", tx_id=self.tx_id, expected=0, found=total)
        self._check_shape()

    def _check_shape(self) -> None:
        shape = _SHAPES[self.kind]
        if len(self.postings) != len(shape):
            raise LedgerError(
                f"a {self.kind} has {len(shape)} postings, got {len(self.postings)}",
                tx_id=self.tx_id,
                expected=len(shape),
                found=len(self.postings),
            )
        for index, (posting, (bucket, sign)) in enumerate(zip(self.postings, shape, strict=True)):
            if posting.bucket is not bucket or posting.amount * sign < 0:
                side = "credit" if sign > 0 else "debit"
                raise LedgerError(
                    f"posting {index} of a {self.kind} must {side} {bucket}", tx_id=self.tx_id, account=posting.account
                )
        accounts = [posting.account for posting in self.postings]
        if self.kind is TxKind.MINT:
            if self.job_id is not None or accounts[0] != MINT_ADDRESS or accounts[1] == MINT_ADDRESS:
                raise LedgerError(
                    "a mint moves credits from the issuer to another account, for no job", tx_id=self.tx_id
                )
            if self.postings[1].amount == 0:
                raise LedgerError("a mint of nothing", tx_id=self.tx_id)
            return
        require_text(self.job_id, field="job_id")
        if accounts[0] != accounts[1] or MINT_ADDRESS in accounts:
            raise LedgerError(f"a {self.kind} moves one client's own credits", tx_id=self.tx_id, account=accounts[0])
        if self.kind is TxKind.SETTLE and accounts[3] != NETWORK_FEE_ADDRESS:
            raise LedgerError(
                "the fee goes to the network fee account",
                tx_id=self.tx_id,
                expected=NETWORK_FEE_ADDRESS,
                found=accounts[3],
            )

    @property
    def amount(self) -> int:
        """What the first posting moves: the minted, held or released amount (a settle's hold)."""
        return -self.postings[0].amount

    def settled(self) -> SettledAmounts:
        if self.kind is not TxKind.SETTLE:
            raise ValueError(f"transaction {self.tx_id!r} is a {self.kind}, not a settle")
        held, back, earned, fee = self.postings
        return SettledAmounts(
            held.account, earned.account, -held.amount, -held.amount - back.amount, earned.amount, fee.amount
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": TRANSACTION_TYPE,
            "tx_id": self.tx_id,
            "kind": self.kind.value,
            "job_id": self.job_id,
            "postings": [posting.to_json() for posting in self.postings],
        }

    def canonical_bytes(self) -> bytes:
        """RFC 8785 JSON of the whole transaction: the Merkle leaf of a block's transactions."""
        return canonical_json(self.to_json())

    @property
    def tx_hash(self) -> str:
        return sha256_hex(self.canonical_bytes())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transaction:
        if data.get("type") != TRANSACTION_TYPE:
            raise invalid_argument("type", f"must be {TRANSACTION_TYPE!r}, got {data.get('type')!r}")
        try:
            kind = TxKind(data["kind"])
        except (KeyError, ValueError):
            raise invalid_argument("kind", f"must be one of {', '.join(TxKind)}, got {data.get('kind')!r}") from None
        raw_postings = data.get("postings")
        if not isinstance(raw_postings, list) or not all(isinstance(p, dict) for p in raw_postings):
            raise invalid_argument("postings", "must be a list of objects")
        postings = []
        for index, raw in enumerate(raw_postings):
            try:
                bucket = Bucket(raw.get("bucket"))
            except ValueError:
                raise invalid_argument(f"postings[{index}].bucket", "must be available or held") from None
            postings.append(Posting(raw.get("account"), bucket, raw.get("amount")))
        return cls(data.get("tx_id", ""), kind, tuple(postings), data.get("job_id"))


def mint(tx_id: str, account: str, amount: int) -> Transaction:
    """An admin credit of `amount` µcr to `account` (an address), from the issuer."""
    require_int(amount, field="amount", minimum=1, maximum=MAX_AMOUNT)
    postings = (Posting(MINT_ADDRESS, Bucket.AVAILABLE, -amount), Posting(account, Bucket.AVAILABLE, amount))
    return Transaction(tx_id, TxKind.MINT, postings)


def hold(job_id: str, client: str, amount: int, *, tx_id: str | None = None) -> Transaction:
    postings = (Posting(client, Bucket.AVAILABLE, -amount), Posting(client, Bucket.HELD, amount))
    return Transaction(tx_id or f"hold:{job_id}", TxKind.HOLD, postings, job_id)


def release(job_id: str, client: str, amount: int, *, tx_id: str | None = None) -> Transaction:
    postings = (Posting(client, Bucket.HELD, -amount), Posting(client, Bucket.AVAILABLE, amount))
    return Transaction(tx_id or f"settle:{job_id}", TxKind.RELEASE, postings, job_id)


def settle(job_id: str, *, client: str, miner: str, settlement: Settlement, tx_id: str | None = None) -> Transaction:
    postings = (
        Posting(client, Bucket.HELD, -settlement.hold),
        Posting(client, Bucket.AVAILABLE, settlement.released),
        Posting(miner, Bucket.AVAILABLE, settlement.miner_earnings),
        Posting(NETWORK_FEE_ADDRESS, Bucket.AVAILABLE, settlement.fee),
    )
    return Transaction(tx_id or f"settle:{job_id}", TxKind.SETTLE, postings, job_id)


def closing_transaction(job_id: str, *, client: str, miner: str | None, settlement: Settlement) -> Transaction:
    """The one transaction that ends a job's hold: a release if nothing is charged, else a settle."""
    if settlement.charge == 0:
        return release(job_id, client, settlement.hold)
    if miner is None:
        raise ValueError(f"job {job_id!r} is charged {settlement.charge} µcr but has no miner to pay")
    return settle(job_id, client=client, miner=miner, settlement=settlement)
