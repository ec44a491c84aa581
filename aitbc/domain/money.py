"""Money: integer micro-credits, job prices, holds, charges and the fee split.

Every amount is an int in micro-credits (µcr, 1 credit = 1_000_000 µcr);
prices are µcr per 1,000 tokens, input (prompt) and output (completion)
separately. Nothing here touches a float, so a charge is the same on every
machine and every replay of the ledger.

Rounding, stated once:
* a job's cost is rounded UP to a whole µcr, once per job:
  ceil((prompt_tokens * input_per_1k + completion_tokens * output_per_1k) / 1000);
* the network fee is rounded DOWN: floor(charge * fee_bps / 10_000), so any
  fraction of a µcr goes to the miner, who did the work;
* miner earnings are the rest: charge - fee, so earnings + fee == charge exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from aitbc.domain.canonical import MAX_JSON_INT, require_int
from aitbc.domain.errors import invalid_argument

MICRO_PER_CREDIT = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000
BPS_DENOMINATOR = 10_000
# 2**53 - 1 µcr is about 9 billion credits: every amount fits a JSON number exactly.
MAX_AMOUNT = MAX_JSON_INT

_CREDITS = re.compile(r"^\s*(\d+)(?:\.(\d{1,6}))?\s*$")


def parse_credits(text: str, *, field: str = "amount") -> int:
    """µcr from a decimal credit amount such as "12.5" or "0.000001"; more than 6 decimals is refused."""
    match = _CREDITS.match(text) if isinstance(text, str) else None
    if match is None:
        raise invalid_argument(field, f"{text!r} is not a credit amount such as 12.5 (at most 6 decimals)")
    whole, fraction = match.groups()
    micro = int(whole) * MICRO_PER_CREDIT + int((fraction or "").ljust(6, "0"))
    return require_int(micro, field=field, maximum=MAX_AMOUNT)


def format_credits(micro: int) -> str:
    """Exact decimal credits: 1_500_000 -> "1.5", 1 -> "0.000001", 0 -> "0"."""
    sign = "-" if micro < 0 else ""
    whole, fraction = divmod(abs(micro), MICRO_PER_CREDIT)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """A model's price on one miner: µcr per 1,000 prompt tokens and per 1,000 completion tokens."""

    input_per_1k: int
    output_per_1k: int

    def __post_init__(self) -> None:
        require_int(self.input_per_1k, field="price_input_per_1k", maximum=MAX_AMOUNT)
        require_int(self.output_per_1k, field="price_output_per_1k", maximum=MAX_AMOUNT)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, as metered by the coordinator from the miner's report."""

    prompt_tokens: int
    completion_tokens: int

    def __post_init__(self) -> None:
        require_int(self.prompt_tokens, field="prompt_tokens")
        require_int(self.completion_tokens, field="completion_tokens")


def cost(prices: TokenPrices, usage: Usage) -> int:
    """What `usage` costs at `prices`, in µcr, rounded up to a whole µcr for the job as a whole."""
    exact_times_1000 = usage.prompt_tokens * prices.input_per_1k + usage.completion_tokens * prices.output_per_1k
    return ceil_div(exact_times_1000, TOKENS_PER_PRICE_UNIT)


def hold_amount(prices: TokenPrices, *, prompt_tokens: int, max_tokens: int) -> int:
    """The most a job can cost: its prompt plus `max_tokens` of output. Held at submission."""
    amount = cost(prices, Usage(prompt_tokens, max_tokens))
    if amount > MAX_AMOUNT:
        raise invalid_argument("max_tokens", f"the job could cost {amount} µcr, more than the ledger can hold")
    return amount


def require_fee_bps(fee_bps: int) -> int:
    """A fee rate in basis points: 0 (no fee) to 10_000 (everything)."""
    return require_int(fee_bps, field="fee_bps", maximum=BPS_DENOMINATOR)


def fee_of(charge: int, fee_bps: int) -> int:
    """The network's share of a charge, rounded down to a whole µcr."""
    return require_int(charge, field="charge", maximum=MAX_AMOUNT) * require_fee_bps(fee_bps) // BPS_DENOMINATOR


class Outcome(StrEnum):
    """How a job ended, as far as money is concerned."""

    COMPLETED = "completed"  # real counts at real prices
    CANCELED = "canceled"  # the tokens the miner produced before the cancel reached it
    FAILED = "failed"  # nothing: the client got no result (a miner's fault, or the attempt cap)
    EXPIRED = "expired"  # nothing: the job's TTL ran out before a result


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one job's end does to money: the charge, its split, and the hold given back."""

    outcome: Outcome
    hold: int
    charge: int
    miner_earnings: int
    fee: int
    billed: Usage  # the tokens that were charged for (zero for failed and expired jobs)

    def __post_init__(self) -> None:
        for name in ("hold", "charge", "miner_earnings", "fee"):
            require_int(getattr(self, name), field=name, maximum=MAX_AMOUNT)
        if self.charge > self.hold:
            raise ValueError(f"charge {self.charge} exceeds the hold {self.hold}")
        if self.miner_earnings + self.fee != self.charge:
            raise ValueError(f"earnings {self.miner_earnings} + fee {self.fee} != charge {self.charge}")

    @property
    def released(self) -> int:
        """The part of the hold that goes back to the client's available balance."""
        return self.hold - self.charge


def billable_usage(outcome: Outcome, usage: Usage) -> Usage:
    """The tokens an outcome charges for.

    A canceled job pays for the tokens produced and no more: the prompt is not
    billed, because the client is promised a charge for what it received.
    """
    if outcome is Outcome.COMPLETED:
        return usage
    if outcome is Outcome.CANCELED:
        return Usage(0, usage.completion_tokens)
    return Usage(0, 0)


def settle(outcome: Outcome, *, hold: int, usage: Usage, prices: TokenPrices, fee_bps: int) -> Settlement:
    """The settlement of a job that ended with `outcome` after using `usage`.

    The charge never exceeds the hold: a prompt that tokenized longer on the
    miner than the estimate held at submission costs the client the hold, no
    more (the hold is the price the client agreed to at most).
    """
    require_int(hold, field="hold", maximum=MAX_AMOUNT)
    billed = billable_usage(outcome, usage)
    charge = min(cost(prices, billed), hold)
    fee = fee_of(charge, fee_bps)
    return Settlement(outcome=outcome, hold=hold, charge=charge, miner_earnings=charge - fee, fee=fee, billed=billed)
