from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.errors import AitbcError
from aitbc.domain.money import (
    MAX_AMOUNT,
    Outcome,
    TokenPrices,
    Usage,
    cost,
    fee_of,
    format_credits,
    hold_amount,
    parse_credits,
    settle,
)

PRICES = TokenPrices(input_per_1k=500, output_per_1k=1_500)  # 0.0005 and 0.0015 credits per 1k tokens


def test_cost_is_exact_integer_arithmetic_rounded_up_once_per_job() -> None:
    # 3 * 500 + 1 * 1500 = 3000 µcr-thousandths: exactly 3 µcr, no rounding.
    assert cost(PRICES, Usage(3, 1)) == 3
    # 1 * 500 = 500 thousandths = 0.5 µcr: rounds up to 1 for the job as a whole.
    assert cost(PRICES, Usage(1, 0)) == 1
    # 0.4 µcr for input and 0.4 for output: rounding each side would charge 2, the job rounds 0.8 once.
    assert cost(TokenPrices(400, 400), Usage(1, 1)) == 1
    assert cost(PRICES, Usage(0, 0)) == 0
    assert cost(TokenPrices(0, 0), Usage(10_000, 10_000)) == 0


def test_the_hold_is_the_cost_of_the_prompt_plus_max_tokens() -> None:
    assert hold_amount(PRICES, prompt_tokens=1_000, max_tokens=256) == 500 + 384
    assert hold_amount(PRICES, prompt_tokens=1_000, max_tokens=256) == cost(PRICES, Usage(1_000, 256))


def test_the_fee_rounds_down_and_the_miner_gets_the_rest() -> None:
    assert fee_of(1_000, 500) == 50
    assert fee_of(19, 500) == 0  # 0.95 µcr of fee rounds down: the miner keeps it
    assert fee_of(21, 500) == 1
    assert fee_of(123, 0) == 0
    assert fee_of(123, 10_000) == 123
    with pytest.raises(AitbcError, match="fee_bps"):
        fee_of(100, 10_001)


def test_a_completed_job_pays_real_counts_at_real_prices() -> None:
    hold = hold_amount(PRICES, prompt_tokens=1_000, max_tokens=1_000)
    settlement = settle(Outcome.COMPLETED, hold=hold, usage=Usage(1_000, 200), prices=PRICES, fee_bps=500)
    assert settlement.charge == 500 + 300
    assert settlement.fee == 40
    assert settlement.miner_earnings == 760
    assert settlement.released == hold - 800


def test_a_canceled_job_pays_for_the_tokens_produced_and_no_more() -> None:
    hold = hold_amount(PRICES, prompt_tokens=1_000, max_tokens=1_000)
    settlement = settle(Outcome.CANCELED, hold=hold, usage=Usage(1_000, 10), prices=PRICES, fee_bps=500)
    assert settlement.billed == Usage(0, 10)
    assert settlement.charge == 15


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.EXPIRED])
def test_failed_and_expired_jobs_pay_nothing_and_release_the_whole_hold(outcome: Outcome) -> None:
    settlement = settle(outcome, hold=2_000, usage=Usage(1_000, 500), prices=PRICES, fee_bps=500)
    assert (settlement.charge, settlement.fee, settlement.miner_earnings, settlement.released) == (0, 0, 0, 2_000)


def test_a_charge_is_capped_at_the_hold() -> None:
    # The miner's tokenizer counted a longer prompt than the estimate held at submission.
    settlement = settle(Outcome.COMPLETED, hold=100, usage=Usage(1_000, 100), prices=PRICES, fee_bps=500)
    assert settlement.charge == 100
    assert settlement.released == 0


def test_prices_and_counts_must_be_non_negative_integers() -> None:
    with pytest.raises(AitbcError, match="price_input_per_1k: must be an integer, got float"):
        TokenPrices(0.5, 1)  # type: ignore[arg-type]
    with pytest.raises(AitbcError, match="price_output_per_1k"):
        TokenPrices(1, -1)
    with pytest.raises(AitbcError, match="completion_tokens"):
        Usage(1, True)
    with pytest.raises(AitbcError, match="max_tokens"):
        hold_amount(TokenPrices(MAX_AMOUNT, MAX_AMOUNT), prompt_tokens=10_000, max_tokens=10_000)


@pytest.mark.parametrize(
    ("text", "micro"),
    [("1", 1_000_000), ("12.5", 12_500_000), ("0.000001", 1), (" 3.000000 ", 3_000_000), ("0", 0)],
)
def test_credits_parse_exactly(text: str, micro: int) -> None:
    assert parse_credits(text) == micro
    assert parse_credits(format_credits(micro)) == micro


@pytest.mark.parametrize("text", ["", "-1", "1.0000001", "1e6", "0x10", "1,5", "nan"])
def test_credit_text_that_is_not_an_exact_amount_is_refused(text: str) -> None:
    with pytest.raises(AitbcError, match="amount"):
        parse_credits(text)


def test_credits_format_exactly() -> None:
    assert format_credits(1_500_000) == "1.5"
    assert format_credits(1) == "0.000001"
    assert format_credits(-2_000_001) == "-2.000001"
    assert format_credits(0) == "0"


prices = st.builds(TokenPrices, st.integers(0, 10**7), st.integers(0, 10**7))
counts = st.integers(0, 50_000)


@given(
    outcome=st.sampled_from(Outcome),
    prices=prices,
    prompt=counts,
    max_tokens=counts,
    used_prompt=counts,
    used=counts,
    fee_bps=st.integers(0, 10_000),
)
def test_settlement_never_charges_more_than_the_hold_and_splits_exactly(
    outcome: Outcome, prices: TokenPrices, prompt: int, max_tokens: int, used_prompt: int, used: int, fee_bps: int
) -> None:
    hold = hold_amount(prices, prompt_tokens=prompt, max_tokens=max_tokens)
    settlement = settle(outcome, hold=hold, usage=Usage(used_prompt, used), prices=prices, fee_bps=fee_bps)
    values = (settlement.hold, settlement.charge, settlement.miner_earnings, settlement.fee, settlement.released)
    assert all(type(value) is int and value >= 0 for value in values)
    assert settlement.charge <= hold
    assert settlement.miner_earnings + settlement.fee == settlement.charge
    assert settlement.released + settlement.charge == hold
    assert settlement.fee * 10_000 <= settlement.charge * fee_bps < (settlement.fee + 1) * 10_000
    if outcome in (Outcome.FAILED, Outcome.EXPIRED):
        assert settlement.charge == 0
    if used_prompt <= prompt and used <= max_tokens:
        # Within what was held, the charge is the exact price of the billed tokens, never capped.
        assert settlement.charge == cost(prices, settlement.billed)
