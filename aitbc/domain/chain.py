"""The chain verifier: replay blocks from genesis and report the first thing that is wrong.

For each block, in this order: height, link to the previous block's hash,
time not going backwards, the coordinator's header signature, transaction
count and root, receipt count and root; then each receipt (unique id,
coordinator signature, amounts, and a settle transaction for its job in the
same block paying the same amounts); then each transaction (unique id, and
applying it to the balances); then the ledger's invariants. At the end, the
replayed balances are compared with the expected ones, if given.

Verification stops at the first problem and names it precisely: the block
height, what was checked, what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aitbc.domain.balances import AccountBalance, Balances
from aitbc.domain.blocks import GENESIS_PREVIOUS_HASH, Block, BlockHeader, receipts_root_of, tx_root_of
from aitbc.domain.canonical import parse_time
from aitbc.domain.ledger import LedgerError, TxKind
from aitbc.domain.signing import verify_b64


@dataclass(frozen=True, slots=True)
class ChainProblem:
    height: int
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"block {self.height}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    blocks_checked: int  # blocks that passed every check
    tip: BlockHeader | None  # the last block that passed
    balances: Balances  # after the last block that passed
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Stop(Exception):
    def __init__(self, problem: ChainProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def verify_chain(
    blocks: Iterable[Block],
    *,
    coordinator_key: bytes,
    expected_balances: Mapping[str, AccountBalance] | None = None,
) -> ChainReport:
    """Verify `blocks`, genesis first. `expected_balances` (address -> balance) is compared at the end."""
    tip: BlockHeader | None = None
    balances = Balances()
    checked = 0
    seen_tx_ids: set[str] = set()
    seen_receipt_ids: set[str] = set()
    try:
        for block in blocks:
            _check_header(block, tip, coordinator_key)
            _check_receipts(block, coordinator_key, seen_receipt_ids)
            balances = _replay(block, balances, seen_tx_ids)
            tip, checked = block.header, checked + 1
        if expected_balances is not None:
            _compare(-1 if tip is None else tip.height, balances, expected_balances)
    except _Stop as stop:
        return ChainReport(checked, tip, balances, stop.problem)
    return ChainReport(checked, tip, balances, None)


def _expect(height: int, what: str, expected: object, found: object) -> None:
    if expected != found:
        raise _Stop(ChainProblem(height, what, str(expected), str(found)))


def _check_header(block: Block, tip: BlockHeader | None, coordinator_key: bytes) -> None:
    header, height = block.header, block.header.height
    _expect(height, "height", 0 if tip is None else tip.height + 1, height)
    _expect(height, "previous_hash", GENESIS_PREVIOUS_HASH if tip is None else tip.block_hash, header.previous_hash)
    if tip is not None and parse_time(header.time, field="time") < parse_time(tip.time, field="time"):
        raise _Stop(ChainProblem(height, "time", f"not before {tip.time}", header.time))
    if not verify_b64(coordinator_key, header.signing_bytes(), block.coordinator_signature):
        raise _Stop(ChainProblem(height, "coordinator_signature", "a valid signature", block.coordinator_signature))
    _expect(height, "tx_count", len(block.transactions), header.tx_count)
    _expect(height, "tx_root", tx_root_of(block.transactions), header.tx_root)
    _expect(height, "receipt_count", len(block.receipts), header.receipt_count)
    _expect(height, "receipts_root", receipts_root_of(block.receipts), header.receipts_root)


def _check_receipts(block: Block, coordinator_key: bytes, seen: set[str]) -> None:
    height = block.height
    settles = {tx.job_id: tx for tx in block.transactions if tx.kind is TxKind.SETTLE}
    for receipt in block.receipts:
        what = f"receipt {receipt.receipt_id!r}"
        if receipt.receipt_id in seen:
            raise _Stop(ChainProblem(height, f"{what} id", "an id not used before", "a repeated id"))
        seen.add(receipt.receipt_id)
        body = receipt.body
        if not verify_b64(coordinator_key, body.signing_bytes(), receipt.coordinator_signature):
            raise _Stop(ChainProblem(height, f"{what} coordinator_signature", "a valid signature", "an invalid one"))
        problems = body.amount_problems()
        if problems:
            raise _Stop(ChainProblem(height, f"{what} amounts", "consistent amounts", "; ".join(problems)))
        settle = settles.get(body.job_id)
        if settle is None:
            raise _Stop(ChainProblem(height, f"{what} settlement", f"a settle of job {body.job_id!r}", "none"))
        paid = settle.settled()
        _expect(
            height,
            f"{what} settlement",
            (body.client, body.miner, body.charged, body.miner_earnings, body.fee),
            (paid.client, paid.miner, paid.charge, paid.miner_earnings, paid.fee),
        )


def _replay(block: Block, balances: Balances, seen: set[str]) -> Balances:
    height = block.height
    for tx in block.transactions:
        if tx.tx_id in seen:
            raise _Stop(ChainProblem(height, f"transaction {tx.tx_id!r} id", "an id not used before", "a repeated id"))
        seen.add(tx.tx_id)
    try:
        # One fold per block: replaying a long chain stays linear.
        balances = balances.apply_all(block.transactions)
    except LedgerError as error:
        expected = "a transaction that applies" if error.expected is None else str(error.expected)
        found = str(error) if error.found is None else str(error.found)
        raise _Stop(ChainProblem(height, str(error), expected, found)) from None
    try:
        balances.check_invariants()
    except LedgerError as error:
        raise _Stop(ChainProblem(height, f"ledger invariant: {error}", str(error.expected), str(error.found))) from None
    return balances


def _compare(height: int, balances: Balances, expected: Mapping[str, AccountBalance]) -> None:
    found = balances.nonzero()
    wanted = {account: value for account, value in expected.items() if value != AccountBalance()}
    for account in sorted(found.keys() | wanted.keys()):
        _expect(
            height, f"balance of {account}", wanted.get(account, AccountBalance()), found.get(account, AccountBalance())
        )
