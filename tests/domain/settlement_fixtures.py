"""A fixed coordinator key, miner key and job, so that receipts and blocks in tests (and docs) are reproducible."""

from __future__ import annotations

import hashlib

from aitbc.domain.accounts import address_of
from aitbc.domain.blocks import Block, seal_block
from aitbc.domain.canonical import text_hash
from aitbc.domain.ledger import Transaction, closing_transaction, hold, mint
from aitbc.domain.money import Outcome, TokenPrices, Usage, hold_amount, settle
from aitbc.domain.receipts import MinerAttestation, Receipt, receipt_body
from aitbc.domain.signing import public_key_of

# Test keys only: seeds anyone can recompute, never used outside tests and docs.
COORDINATOR_SEED = hashlib.sha256(b"aitbc test coordinator key").digest()
MINER_SEED = hashlib.sha256(b"aitbc test miner key").digest()
COORDINATOR_KEY = public_key_of(COORDINATOR_SEED)
MINER_KEY = public_key_of(MINER_SEED)

CLIENT = address_of("acct-client-1")
MINER = address_of("acct-miner-1")
PRICES = TokenPrices(input_per_1k=20_000, output_per_1k=62_500)  # 0.02 and 0.0625 credits per 1k tokens
FEE_BPS = 500
OUTPUT = "Hello! How can I help you today?"
INPUT_HASH = text_hash('{"model":"smollm2-135m","prompt":"Say hello"}')
PROMPT_TOKENS, MAX_TOKENS, COMPLETION_TOKENS = 12, 256, 9
HOLD = hold_amount(PRICES, prompt_tokens=PROMPT_TOKENS, max_tokens=MAX_TOKENS)


def make_receipt(
    job_id: str = "job-1", *, miner_signs: bool = True, outcome: Outcome = Outcome.COMPLETED, attempt: int = 1
) -> Receipt:
    usage = Usage(PROMPT_TOKENS, COMPLETION_TOKENS)
    settlement = settle(outcome, hold=HOLD, usage=usage, prices=PRICES, fee_bps=FEE_BPS)
    attestation = MinerAttestation(job_id, attempt, text_hash(OUTPUT), PROMPT_TOKENS, COMPLETION_TOKENS)
    body = receipt_body(
        receipt_id=f"rcpt-{job_id}",
        job_id=job_id,
        attempt=attempt,
        client=CLIENT,
        miner=MINER,
        model="smollm2-135m",
        usage=usage,
        prices=PRICES,
        fee_bps=FEE_BPS,
        settlement=settlement,
        input_hash=INPUT_HASH,
        output_hash=text_hash(OUTPUT),
        started_at="2026-02-13T10:00:00.000000Z",
        completed_at="2026-02-13T10:00:01.250000Z",
        miner_public_key=MINER_KEY if miner_signs else None,
        miner_signature=attestation.sign(MINER_SEED) if miner_signs else None,
    )
    return body.issue(COORDINATOR_SEED)


def job_transactions(receipt: Receipt) -> list[Transaction]:
    """The hold and the settle behind a receipt."""
    body = receipt.body
    settlement = settle(body.outcome, hold=HOLD, usage=body.usage, prices=PRICES, fee_bps=FEE_BPS)
    return [
        hold(body.job_id, CLIENT, HOLD),
        closing_transaction(body.job_id, client=CLIENT, miner=MINER, settlement=settlement),
    ]


def make_chain(jobs_per_block: int = 2, blocks: int = 3) -> list[Block]:
    """A genesis block that mints for the client, then blocks of settled jobs with their receipts."""
    chain = [
        seal_block(
            previous=None,
            time="2026-02-13T09:00:00.000000Z",
            transactions=[mint("mint-1", CLIENT, 1_000_000)],
            receipts=[],
            coordinator_seed=COORDINATOR_SEED,
        )
    ]
    for height in range(1, blocks):
        receipts = [make_receipt(f"job-{height}-{n}") for n in range(jobs_per_block)]
        transactions = [tx for receipt in receipts for tx in job_transactions(receipt)]
        chain.append(
            seal_block(
                previous=chain[-1].header,
                time=f"2026-02-13T10:{height:02d}:00.000000Z",
                transactions=transactions,
                receipts=receipts,
                coordinator_seed=COORDINATOR_SEED,
            )
        )
    return chain
