"""Receipts: what a job cost and produced, signed by the coordinator and, optionally, the miner.

The JSON form is flat: `type`, the body's fields, and `coordinator_signature`.
The coordinator signs the RFC 8785 bytes of that object without
`coordinator_signature` — every other field, the miner's key and signature
included. The miner signs a `MinerAttestation`: the RFC 8785 bytes of
{type, job_id, attempt, output_hash, prompt_tokens, completion_tokens}. Each
signed object carries a `type` so that a signature over one kind of object
can never be passed off as a signature over another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from aitbc.domain.accounts import parse_address
from aitbc.domain.canonical import (
    b64url_decode,
    canonical_json,
    parse_time,
    require_digest,
    require_int,
    require_text,
    sha256_hex,
)
from aitbc.domain.errors import invalid_argument
from aitbc.domain.money import MAX_AMOUNT, Outcome, Settlement, TokenPrices, Usage, billable_usage, cost, fee_of
from aitbc.domain.signing import SIGNATURE_BYTES, decode_key, encode_key, sign_b64

RECEIPT_TYPE = "aitbc.receipt.v1"
ATTESTATION_TYPE = "aitbc.miner_attestation.v1"
MAX_ID_CHARS = 128
# Failed and expired jobs charge nothing: their hold is released and there is no receipt.
RECEIPT_OUTCOMES = frozenset({Outcome.COMPLETED, Outcome.CANCELED})


@dataclass(frozen=True, slots=True)
class MinerAttestation:
    """What a miner signs when it finishes a job: which attempt produced which output, and how many tokens."""

    job_id: str
    attempt: int
    output_hash: str
    prompt_tokens: int
    completion_tokens: int

    def __post_init__(self) -> None:
        require_text(self.job_id, field="job_id", max_chars=MAX_ID_CHARS)
        require_int(self.attempt, field="attempt", minimum=1)
        require_digest(self.output_hash, field="output_hash")
        require_int(self.prompt_tokens, field="prompt_tokens")
        require_int(self.completion_tokens, field="completion_tokens")

    def canonical_bytes(self) -> bytes:
        return canonical_json({"type": ATTESTATION_TYPE, **asdict(self)})

    def sign(self, miner_seed: bytes) -> str:
        """The miner's signature, base64url without padding."""
        return sign_b64(miner_seed, self.canonical_bytes())


@dataclass(frozen=True, slots=True)
class ReceiptBody:
    """Every field the coordinator signs. Amounts are µcr; prices are µcr per 1,000 tokens."""

    receipt_id: str
    job_id: str
    attempt: int
    outcome: Outcome
    client: str  # address
    miner: str  # address
    model: str
    prompt_tokens: int
    completion_tokens: int
    price_input_per_1k: int
    price_output_per_1k: int
    fee_bps: int
    charged: int
    miner_earnings: int
    fee: int
    input_hash: str  # sha256 hex of the canonical request (`JobSpec.input_hash`)
    output_hash: str  # sha256 hex of the result text, UTF-8
    started_at: str  # RFC 3339 UTC
    completed_at: str
    miner_public_key: str | None  # base64url Ed25519 key, None where the miner has none
    miner_signature: str | None  # base64url signature of the attestation, None where the miner did not sign
    miner_signed: bool

    def __post_init__(self) -> None:
        # Shape only: a receipt whose values disagree still parses, so that
        # verification can say which check it fails.
        for name in ("receipt_id", "job_id", "model"):
            require_text(getattr(self, name), field=name, max_chars=MAX_ID_CHARS)
        if not isinstance(self.outcome, Outcome) or self.outcome not in RECEIPT_OUTCOMES:
            raise invalid_argument("outcome", f"must be completed or canceled, got {self.outcome!r}")
        for name in ("client", "miner"):
            if parse_address(getattr(self, name), field=name) != getattr(self, name):
                raise invalid_argument(name, "must be written in lowercase")
        require_int(self.attempt, field="attempt", minimum=1)
        for name in ("prompt_tokens", "completion_tokens"):
            require_int(getattr(self, name), field=name)
        for name in ("price_input_per_1k", "price_output_per_1k", "charged", "miner_earnings", "fee"):
            require_int(getattr(self, name), field=name, maximum=MAX_AMOUNT)
        require_int(self.fee_bps, field="fee_bps", maximum=10_000)
        require_digest(self.input_hash, field="input_hash")
        require_digest(self.output_hash, field="output_hash")
        if parse_time(self.completed_at, field="completed_at") < parse_time(self.started_at, field="started_at"):
            raise invalid_argument("completed_at", "is before started_at")
        if self.miner_public_key is not None:
            decode_key(self.miner_public_key, field="miner_public_key")
        if self.miner_signature is not None:
            b64url_decode(self.miner_signature, field="miner_signature", length=SIGNATURE_BYTES)
        if not isinstance(self.miner_signed, bool):
            raise invalid_argument("miner_signed", "must be true or false")

    @property
    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens)

    @property
    def prices(self) -> TokenPrices:
        return TokenPrices(self.price_input_per_1k, self.price_output_per_1k)

    def attestation(self) -> MinerAttestation:
        """The attestation the miner's signature must cover, rebuilt from this receipt."""
        return MinerAttestation(self.job_id, self.attempt, self.output_hash, self.prompt_tokens, self.completion_tokens)

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"type": RECEIPT_TYPE, **values, "outcome": self.outcome.value}

    def signing_bytes(self) -> bytes:
        """The bytes the coordinator signs: RFC 8785 JSON of the receipt without `coordinator_signature`."""
        return canonical_json(self.to_json())

    def amount_problems(self) -> list[str]:
        """Where the amounts disagree with the counts, prices and fee rate (empty when they agree).

        The charge may be below the price of the billed tokens: a charge is
        capped at the job's hold, which the receipt does not carry.
        """
        problems = []
        billed = cost(self.prices, billable_usage(self.outcome, self.usage))
        if self.charged > billed:
            problems.append(f"charged {self.charged} µcr, more than the {billed} µcr the billed tokens cost")
        if self.fee != fee_of(self.charged, self.fee_bps):
            problems.append(f"fee {self.fee} µcr is not {self.fee_bps} bps of {self.charged} µcr")
        if self.miner_earnings + self.fee != self.charged:
            problems.append(f"earnings {self.miner_earnings} + fee {self.fee} != charged {self.charged}")
        return problems

    def issue(self, coordinator_seed: bytes) -> Receipt:
        """This body signed by the coordinator."""
        return Receipt(self, sign_b64(coordinator_seed, self.signing_bytes()))


@dataclass(frozen=True, slots=True)
class Receipt:
    body: ReceiptBody
    coordinator_signature: str  # base64url Ed25519 signature of body.signing_bytes()

    def __post_init__(self) -> None:
        b64url_decode(self.coordinator_signature, field="coordinator_signature", length=SIGNATURE_BYTES)

    @property
    def receipt_id(self) -> str:
        return self.body.receipt_id

    def to_json(self) -> dict[str, Any]:
        return {**self.body.to_json(), "coordinator_signature": self.coordinator_signature}

    def canonical_bytes(self) -> bytes:
        """RFC 8785 JSON of the whole receipt, signature included: its Merkle leaf in a block."""
        return canonical_json(self.to_json())

    @property
    def receipt_hash(self) -> str:
        return sha256_hex(self.canonical_bytes())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        """A receipt from its JSON object; an unknown, missing or malformed field is an error naming it."""
        if data.get("type") != RECEIPT_TYPE:
            raise invalid_argument("type", f"must be {RECEIPT_TYPE!r}, got {data.get('type')!r}")
        names = [f.name for f in fields(ReceiptBody)]
        expected = {"type", "coordinator_signature", *names}
        for key in data:
            if key not in expected:
                raise invalid_argument(key, "is not a receipt field")
        missing = sorted(expected - set(data))
        if missing:
            raise invalid_argument(missing[0], "is missing")
        if not isinstance(data["coordinator_signature"], str):
            raise invalid_argument("coordinator_signature", "must be a base64url string")
        values = {name: data[name] for name in names}
        try:
            values["outcome"] = Outcome(values["outcome"])
        except (ValueError, TypeError):
            raise invalid_argument("outcome", f"must be completed or canceled, got {values['outcome']!r}") from None
        return cls(ReceiptBody(**values), data["coordinator_signature"])


def receipt_body(
    *,
    receipt_id: str,
    job_id: str,
    attempt: int,
    client: str,
    miner: str,
    model: str,
    usage: Usage,
    prices: TokenPrices,
    fee_bps: int,
    settlement: Settlement,
    input_hash: str,
    output_hash: str,
    started_at: str,
    completed_at: str,
    miner_public_key: bytes | None = None,
    miner_signature: str | None = None,
) -> ReceiptBody:
    """A receipt body whose amounts are `settlement`'s; `miner_signed` follows from the signature's presence."""
    return ReceiptBody(
        receipt_id=receipt_id,
        job_id=job_id,
        attempt=attempt,
        outcome=settlement.outcome,
        client=client,
        miner=miner,
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        price_input_per_1k=prices.input_per_1k,
        price_output_per_1k=prices.output_per_1k,
        fee_bps=fee_bps,
        charged=settlement.charge,
        miner_earnings=settlement.miner_earnings,
        fee=settlement.fee,
        input_hash=input_hash,
        output_hash=output_hash,
        started_at=started_at,
        completed_at=completed_at,
        miner_public_key=None if miner_public_key is None else encode_key(miner_public_key),
        miner_signature=miner_signature,
        miner_signed=miner_signature is not None,
    )
