"""Settlement: what a job holds when submitted, what its end charges, and the accounts that money moves in.

This part decides and the store applies. `hold_for` gives the hold that
`create_job` places in the transaction storing the job; `closing` gives the
settlement that `transition` applies in the transaction of the job's terminal
state (the job table asks for it there). The store reads the hold back in that
same transaction and runs the domain's `settle`, so a restart, a retried
transition or a SIGKILL between any two statements can never charge a job
twice or lose its charge: either the terminal state and the settlement
committed together, or neither did.

Prices are the catalog's, fixed at submission and stored with the hold: the
job is charged at the price it was held at. A free model (price 0) holds
nothing and writes no ledger entries.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

from aitbc.coordinator.clock import Clock
from aitbc.domain.accounts import RESERVED_ACCOUNTS, address_of, parse_address
from aitbc.domain.blocks import ReceiptProof, receipt_proof
from aitbc.domain.canonical import format_time, require_int, text_hash
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.money import MAX_AMOUNT, Outcome, TokenPrices, Usage, format_credits, hold_amount, require_fee_bps
from aitbc.domain.receipts import Receipt
from aitbc.domain.routing import RouteRequest
from aitbc.domain.signing import public_key_of
from aitbc.domain.states import JobState
from aitbc.store.base import (
    AccountRecord,
    HoldRequest,
    InsufficientFundsError,
    JobChanges,
    ReceiptDraft,
    SettleRequest,
    Store,
)

# 5%: the network's share of every charge (`CoordinatorConfig.fee_bps`).
DEFAULT_FEE_BPS = 500
# Failed jobs whose error starts so ran out their TTL (`ClientJobs._expire`); both outcomes charge nothing.
EXPIRED_PREFIX = "expired"
MAX_ACCOUNT_CHARS = 128
MAX_CREDIT_ID_CHARS = 128
# The coordinator's receipt-signing key in AITBC_HOME: PKCS#8 PEM, mode 0600 (`aitbc.key_files`).
COORDINATOR_KEY_FILE = "coordinator-key.pem"
DEFAULT_RECEIPTS = 20
MAX_RECEIPTS = 1000


class Settlement:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        fee_bps: int,
        miner_owner: Callable[[str], str | None],
        coordinator_seed: bytes,
        miner_attestation: Callable[[str, str, int], tuple[bytes, str] | None] = lambda job, miner, attempt: None,
        on_entry: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_entry` is told of each ledger entry about to be written (the block sealer counts them)."""
        self._store = store
        self.seed = coordinator_seed
        self.public_key = public_key_of(coordinator_seed)
        self._clock = clock
        self._fee_bps = require_fee_bps(fee_bps)
        self._miner_owner = miner_owner
        # (job, miner, attempt) -> the miner's key and its verified signature of the job, if it signed.
        self._miner_attestation = miner_attestation
        self._on_entry = on_entry

    @property
    def fee_bps(self) -> int:
        return self._fee_bps

    def hold_for(self, owner_id: str, route: RouteRequest) -> HoldRequest | None:
        """The hold a job needs: its prompt (estimated) plus `max_tokens` at the model's prices; None if free."""
        entry = route.model
        prices = TokenPrices(entry.price_input_per_1k, entry.price_output_per_1k)
        amount = hold_amount(prices, prompt_tokens=route.prompt_tokens, max_tokens=route.max_tokens)
        if amount == 0:
            return None
        self._on_entry()
        return HoldRequest(owner_id, amount, prices)

    @staticmethod
    def insufficient(error: InsufficientFundsError) -> AitbcError:
        missing = error.needed - error.available
        return AitbcError(
            Reason.INSUFFICIENT_FUNDS,
            f"the job may cost up to {format_credits(error.needed)} credits ({error.needed} µcr) and the account"
            f" has {format_credits(error.available)} available: {format_credits(missing)} credits"
            f" ({missing} µcr) missing",
        )

    def closing(self, record: JobRecord, to: JobState, changes: JobChanges, event: JobEvent) -> SettleRequest | None:
        """The settlement of a transition to `to`; None unless `to` is terminal. `event` carries the final counts."""
        if not to.is_terminal:
            return None
        self._on_entry()
        if to is JobState.COMPLETED:
            outcome = Outcome.COMPLETED
        elif to is JobState.CANCELED:
            outcome = Outcome.CANCELED
        else:
            outcome = Outcome.EXPIRED if event.error.startswith(EXPIRED_PREFIX) else Outcome.FAILED
        miner = self._miner_owner(event.miner_id) if event.miner_id else None
        usage = Usage(max(event.prompt_tokens, 0), max(event.completion_tokens, 0))
        draft = None
        if miner is not None:
            result = changes.result if changes.result is not None else record.result
            signed = self._miner_attestation(record.job_id, event.miner_id, event.attempt)
            draft = functools.partial(self._draft, record, miner, result, event, signed)
        return SettleRequest(outcome=outcome, usage=usage, fee_bps=self._fee_bps, miner_account_id=miner, receipt=draft)

    def _draft(
        self, record: JobRecord, miner: str, result: str, event: JobEvent, signed: tuple[bytes, str] | None
    ) -> ReceiptDraft:
        return ReceiptDraft(
            job_id=record.job_id,
            attempt=event.attempt,
            client=address_of(record.owner_id),
            miner=address_of(miner),
            model=record.spec.model,
            input_hash=record.spec.input_hash(),
            output_hash=text_hash(result),
            started_at=format_time(record.started_at or event.time),
            completed_at=format_time(event.time),
            coordinator_seed=self.seed,
            miner_public_key=signed[0] if signed else None,
            miner_signature=signed[1] if signed else None,
        )

    async def receipt(self, receipt_id: str) -> tuple[Receipt, ReceiptProof | None]:
        """A receipt and the proof of its block; None until it is sealed. Public: a receipt shows addresses,
        hashes and amounts, never a prompt or output."""
        receipt = await self._store.receipt(receipt_id)
        if receipt is None:
            raise AitbcError(Reason.RECEIPT_NOT_FOUND, f"receipt {receipt_id!r} not found", field="receipt_id")
        height = await self._store.receipt_block(receipt_id)
        if height is None:
            return receipt, None
        (block,) = await self._store.blocks(from_height=height, limit=1)
        return receipt, receipt_proof(block, receipt_id)

    async def receipts(self, principal: Principal, client: str, limit: int) -> list[Receipt]:
        """The newest receipts of a client address; without one, of the caller's own account."""
        if limit == 0:
            limit = DEFAULT_RECEIPTS
        if not 1 <= limit <= MAX_RECEIPTS:
            raise invalid_argument("limit", f"must be between 1 and {MAX_RECEIPTS}, got {limit}")
        address = parse_address(client, field="client") if client else address_of(principal.owner_id)
        return await self._store.receipts(client=address, limit=limit)

    async def account(self, principal: Principal, account_id: str = "") -> AccountRecord:
        """The caller's own account; admins may name any."""
        if not account_id or account_id == principal.owner_id:
            return await self._store.account(principal.owner_id)
        if principal.role is not Role.ADMIN:
            raise AitbcError(Reason.PERMISSION_DENIED, "only an admin key may read another account", field="account")
        return await self._store.account(_account_id(account_id, allow_reserved=True))

    async def credit(self, principal: Principal, account_id: str, amount: int, credit_id: str = "") -> AccountRecord:
        """Mint `amount` µcr into an account; the same `credit_id` credits once."""
        if principal.role is not Role.ADMIN:
            raise AitbcError(Reason.PERMISSION_DENIED, "crediting an account needs an admin key")
        account_id = _account_id(account_id)
        require_int(amount, field="amount", minimum=1, maximum=MAX_AMOUNT)
        if len(credit_id) > MAX_CREDIT_ID_CHARS or not credit_id.isprintable():
            raise invalid_argument("credit_id", f"must be printable, at most {MAX_CREDIT_ID_CHARS} characters")
        tx_id = f"mint:{account_id}:{credit_id}" if credit_id else f"mint:{secrets.token_hex(12)}"
        record = await self._store.credit(account_id, amount, tx_id=tx_id, now=self._clock.now())
        self._on_entry()  # after the commit: an early seal started now sees this entry on any store
        return record


def _account_id(account_id: str, *, allow_reserved: bool = False) -> str:
    if not account_id or len(account_id) > MAX_ACCOUNT_CHARS or not account_id.isprintable():
        raise invalid_argument("account", f"must be an account id of 1 to {MAX_ACCOUNT_CHARS} printable characters")
    if account_id in RESERVED_ACCOUNTS and not allow_reserved:
        raise invalid_argument("account", f"{account_id!r} is a reserved account")
    return account_id
