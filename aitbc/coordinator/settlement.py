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

import secrets
from collections.abc import Callable

from aitbc.coordinator.clock import Clock
from aitbc.domain.accounts import MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID
from aitbc.domain.canonical import require_int
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.money import MAX_AMOUNT, Outcome, TokenPrices, Usage, format_credits, hold_amount, require_fee_bps
from aitbc.domain.routing import RouteRequest
from aitbc.domain.states import JobState
from aitbc.store.base import AccountRecord, HoldRequest, InsufficientFundsError, SettleRequest, Store

# 5%: the network's share of every charge (`CoordinatorConfig.fee_bps`).
DEFAULT_FEE_BPS = 500
RESERVED_ACCOUNTS = frozenset({MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID})
# Failed jobs whose error starts so ran out their TTL (`ClientJobs._expire`); both outcomes charge nothing.
EXPIRED_PREFIX = "expired"
MAX_ACCOUNT_CHARS = 128
MAX_CREDIT_ID_CHARS = 128


class Settlement:
    def __init__(self, store: Store, clock: Clock, *, fee_bps: int, miner_owner: Callable[[str], str | None]) -> None:
        self._store = store
        self._clock = clock
        self._fee_bps = require_fee_bps(fee_bps)
        self._miner_owner = miner_owner

    @property
    def fee_bps(self) -> int:
        return self._fee_bps

    def hold_for(self, owner_id: str, route: RouteRequest) -> HoldRequest | None:
        """The hold a job needs: its prompt (estimated) plus `max_tokens` at the model's prices; None if free."""
        entry = route.model
        prices = TokenPrices(entry.price_input_per_1k, entry.price_output_per_1k)
        amount = hold_amount(prices, prompt_tokens=route.prompt_tokens, max_tokens=route.max_tokens)
        return None if amount == 0 else HoldRequest(owner_id, amount, prices)

    @staticmethod
    def insufficient(error: InsufficientFundsError) -> AitbcError:
        missing = error.needed - error.available
        return AitbcError(
            Reason.INSUFFICIENT_FUNDS,
            f"the job may cost up to {format_credits(error.needed)} credits ({error.needed} µcr) and the account"
            f" has {format_credits(error.available)} available: {format_credits(missing)} credits"
            f" ({missing} µcr) missing",
        )

    def closing(self, record: JobRecord, to: JobState, event: JobEvent) -> SettleRequest | None:
        """The settlement of a transition to `to`; None unless `to` is terminal. `event` carries the final counts."""
        if not to.is_terminal:
            return None
        if to is JobState.COMPLETED:
            outcome = Outcome.COMPLETED
        elif to is JobState.CANCELED:
            outcome = Outcome.CANCELED
        else:
            outcome = Outcome.EXPIRED if event.error.startswith(EXPIRED_PREFIX) else Outcome.FAILED
        miner = self._miner_owner(event.miner_id) if event.miner_id else None
        usage = Usage(max(event.prompt_tokens, 0), max(event.completion_tokens, 0))
        return SettleRequest(outcome=outcome, usage=usage, fee_bps=self._fee_bps, miner_account_id=miner)

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
        return await self._store.credit(account_id, amount, tx_id=tx_id, now=self._clock.now())


def _account_id(account_id: str, *, allow_reserved: bool = False) -> str:
    if not account_id or len(account_id) > MAX_ACCOUNT_CHARS or not account_id.isprintable():
        raise invalid_argument("account", f"must be an account id of 1 to {MAX_ACCOUNT_CHARS} printable characters")
    if account_id in RESERVED_ACCOUNTS and not allow_reserved:
        raise invalid_argument("account", f"{account_id!r} is a reserved account")
    return account_id
