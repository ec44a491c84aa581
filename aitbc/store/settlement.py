"""What both stores compute in Python for money, so that their SQL modules only write it.

A hold's check, a settlement's transaction and receipt, and which account columns a ledger transaction moves
are the same for SQLite and PostgreSQL; the arithmetic itself is the domain's (`aitbc.domain.money.settle`,
`aitbc.domain.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aitbc.domain.accounts import NETWORK_FEE_ACCOUNT_ID, address_of
from aitbc.domain.ledger import Bucket, Transaction, TxKind, closing_transaction
from aitbc.domain.money import Settlement, TokenPrices, Usage, settle
from aitbc.domain.receipts import RECEIPT_OUTCOMES, Receipt, receipt_body
from aitbc.store.base import HoldRequest, InsufficientFundsError, ReceiptDraft, SettleRequest


def check_hold(request: HoldRequest, available: int) -> None:
    """Raise `InsufficientFundsError` if the account's available µcr cannot cover the hold."""
    if available < request.amount:
        raise InsufficientFundsError(request.account_id, request.amount, available)


def account_moves(tx: Transaction) -> list[tuple[str, int, str]]:
    """(column, amount, address) for each account bucket `tx` adds to: its postings, and for a settlement the
    client's `spent`, the miner's `earned` and the fee account's `earned`."""
    moves = [
        ("available" if posting.bucket is Bucket.AVAILABLE else "held", posting.amount, posting.account)
        for posting in tx.postings
    ]
    if tx.kind is TxKind.SETTLE:
        amounts = tx.settled()
        moves.append(("spent", amounts.charge, amounts.client))
        moves.append(("earned", amounts.miner_earnings, amounts.miner))
        moves.append(("earned", amounts.fee, tx.postings[3].account))
    return moves


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    """What closing one hold writes: the ledger transaction, the accounts it involves, and the receipt if any."""

    transaction: Transaction
    accounts: set[str]  # account ids that must exist before `transaction` moves them
    settlement: Settlement
    receipt: Receipt | None


def plan_settlement(
    job_id: str, client: str, amount: int, prices: TokenPrices, request: SettleRequest
) -> SettlementPlan:
    """Close the hold of `amount` µcr that `client` placed for `job_id` at `prices`, as `request` says."""
    # No miner to pay (its account is unknown): the client is charged nothing rather than paying no one.
    usage = request.usage if request.miner_account_id is not None else Usage(0, 0)
    settlement = settle(request.outcome, hold=amount, usage=usage, prices=prices, fee_bps=request.fee_bps)
    miner = request.miner_account_id
    tx = closing_transaction(
        job_id, client=address_of(client), miner=None if miner is None else address_of(miner), settlement=settlement
    )
    involved = {client, NETWORK_FEE_ACCOUNT_ID} | ({miner} if miner is not None else set())
    receipt = None
    # A receipt goes with a charge only: it is sealed in the block of the settle transaction that paid it.
    if request.receipt is not None and tx.kind is TxKind.SETTLE and settlement.outcome in RECEIPT_OUTCOMES:
        receipt = _issue(request.receipt(), usage, prices, request.fee_bps, settlement)
    return SettlementPlan(tx, involved, settlement, receipt)


def receipt_id_of(job_id: str) -> str:
    """One receipt per job, so its id follows from the job's."""
    return "rcpt_" + job_id.removeprefix("job_")


def _issue(draft: ReceiptDraft, usage: Usage, prices: TokenPrices, fee_bps: int, settlement: Settlement) -> Receipt:
    body = receipt_body(
        receipt_id=receipt_id_of(draft.job_id),
        job_id=draft.job_id,
        attempt=draft.attempt,
        client=draft.client,
        miner=draft.miner,
        model=draft.model,
        usage=usage,
        prices=prices,
        fee_bps=fee_bps,
        settlement=settlement,
        input_hash=draft.input_hash,
        output_hash=draft.output_hash,
        started_at=draft.started_at,
        completed_at=draft.completed_at,
        miner_public_key=draft.miner_public_key,
        miner_signature=draft.miner_signature,
    )
    return body.issue(draft.coordinator_seed)
