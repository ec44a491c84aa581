from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.accounts import address_of
from aitbc.domain.blocks import ReceiptProof, receipt_proof, seal_block
from aitbc.domain.canonical import b64url_decode, b64url_encode, text_hash
from aitbc.domain.errors import AitbcError
from aitbc.domain.merkle import InclusionProof
from aitbc.domain.money import Outcome
from aitbc.domain.receipts import Receipt, ReceiptBody
from aitbc.domain.signing import encode_key, generate_seed, public_key_of
from aitbc.domain.verify import CHECK_NAMES, CheckStatus, verify_receipt
from tests.domain.settlement_fixtures import (
    COORDINATOR_KEY,
    COORDINATOR_SEED,
    MINER_KEY,
    OUTPUT,
    job_transactions,
    make_receipt,
)

RECEIPT = make_receipt()


def test_a_receipt_records_the_job_its_price_and_its_split() -> None:
    body = RECEIPT.body
    assert (body.prompt_tokens, body.completion_tokens) == (12, 9)
    # (12 * 20_000 + 9 * 62_500) / 1000 = 802.5 µcr, rounded up; the 5% fee of 803 (40.15) rounds down.
    assert (body.charged, body.fee, body.miner_earnings) == (803, 40, 763)
    assert body.output_hash == text_hash(OUTPUT)
    assert body.miner_signed
    assert body.miner_public_key == encode_key(MINER_KEY)


def test_the_coordinator_signs_everything_but_its_own_signature() -> None:
    signed = json.loads(RECEIPT.body.signing_bytes())
    assert "coordinator_signature" not in signed
    assert set(signed) == {"type", *(field.name for field in dataclasses.fields(ReceiptBody))}
    assert signed["type"] == "aitbc.receipt.v1"
    assert json.loads(RECEIPT.canonical_bytes()) == RECEIPT.to_json()


def test_a_good_receipt_passes_every_check_it_was_given_input_for() -> None:
    verification = verify_receipt(RECEIPT, coordinator_key=COORDINATOR_KEY, output_text=OUTPUT, miner_key=MINER_KEY)
    assert verification.ok
    assert [check.name for check in verification.checks] == list(CHECK_NAMES)
    assert verification.skipped == ("block_signature", "inclusion_proof")
    assert verification["output_hash"].status is CheckStatus.PASSED


def test_a_receipt_the_miner_did_not_sign_says_so() -> None:
    unsigned = make_receipt(miner_signs=False)
    data = unsigned.to_json()
    assert (data["miner_signature"], data["miner_signed"], data["miner_public_key"]) == (None, False, None)
    verification = verify_receipt(unsigned, coordinator_key=COORDINATOR_KEY)
    assert verification.ok
    assert verification["miner_signature"].status is CheckStatus.SKIPPED
    assert "miner_signed: false" in verification["miner_signature"].detail
    strict = verify_receipt(unsigned, coordinator_key=COORDINATOR_KEY, require_miner_signature=True)
    assert strict.failed == ("miner_signature",)


def test_a_signature_by_another_key_than_the_miners_registered_one_fails() -> None:
    other = public_key_of(generate_seed())
    verification = verify_receipt(RECEIPT, coordinator_key=COORDINATOR_KEY, miner_key=other)
    assert verification.failed == ("miner_signature",)
    assert "not the miner's" in verification["miner_signature"].detail


def test_a_different_result_text_fails_the_output_hash() -> None:
    verification = verify_receipt(RECEIPT, coordinator_key=COORDINATOR_KEY, output_text=OUTPUT + " ")
    assert verification.failed == ("output_hash",)


def test_another_coordinator_key_fails_the_coordinator_signature() -> None:
    verification = verify_receipt(RECEIPT, coordinator_key=public_key_of(generate_seed()))
    assert verification.failed == ("coordinator_signature",)


def _flip_b64(text: str, position: int, mask: int = 1) -> str:
    raw = bytearray(b64url_decode(text, field="x"))
    raw[position % len(raw)] ^= mask
    return b64url_encode(bytes(raw))


def _later(text: str) -> str:
    return text.replace("10:00:01", "10:00:02")


def _flip_hex(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


ATTESTED = ("coordinator_signature", "miner_signature")
# Each field, a change to it that keeps the receipt well-formed, and the checks that must then fail.
TAMPERS: dict[str, tuple[Callable[[Any], Any], tuple[str, ...]]] = {
    "receipt_id": (lambda v: v + "x", ("coordinator_signature",)),
    "job_id": (lambda v: v + "x", ATTESTED),
    "attempt": (lambda v: v + 1, ATTESTED),
    "outcome": (lambda v: Outcome.CANCELED, ("coordinator_signature", "amounts")),
    "client": (lambda v: address_of("someone-else"), ("coordinator_signature",)),
    "miner": (lambda v: address_of("someone-else"), ("coordinator_signature",)),
    "model": (lambda v: v + "x", ("coordinator_signature",)),
    "prompt_tokens": (lambda v: v + 1, ATTESTED),
    "completion_tokens": (lambda v: v - 1, (*ATTESTED, "amounts")),
    "price_input_per_1k": (lambda v: v // 2, ("coordinator_signature", "amounts")),
    "price_output_per_1k": (lambda v: v // 2, ("coordinator_signature", "amounts")),
    "fee_bps": (lambda v: v + 100, ("coordinator_signature", "amounts")),
    "charged": (lambda v: v + 1, ("coordinator_signature", "amounts")),
    "miner_earnings": (lambda v: v + 1, ("coordinator_signature", "amounts")),
    "fee": (lambda v: v - 1, ("coordinator_signature", "amounts")),
    "input_hash": (_flip_hex, ("coordinator_signature",)),
    "output_hash": (_flip_hex, (*ATTESTED, "output_hash")),
    "started_at": (lambda v: v.replace("10:00:00", "09:59:59"), ("coordinator_signature",)),
    "completed_at": (_later, ("coordinator_signature",)),
    "miner_public_key": (lambda v: encode_key(public_key_of(generate_seed())), ATTESTED),
    "miner_signature": (lambda v: _flip_b64(v, 0), ATTESTED),
    "miner_signed": (lambda v: not v, ATTESTED),
}


def test_every_field_has_a_tamper_case() -> None:
    assert set(TAMPERS) == {field.name for field in dataclasses.fields(ReceiptBody)}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampering_any_single_field_fails_verification_and_names_the_check(name: str) -> None:
    change, must_fail = TAMPERS[name]
    tampered_body = dataclasses.replace(RECEIPT.body, **{name: change(getattr(RECEIPT.body, name))})
    tampered = Receipt(tampered_body, RECEIPT.coordinator_signature)
    verification = verify_receipt(tampered, coordinator_key=COORDINATOR_KEY, output_text=OUTPUT)
    assert not verification.ok
    assert set(verification.failed) == set(must_fail), verification.checks


@given(st.integers(0, 63), st.integers(1, 255))
def test_changing_any_byte_of_the_coordinator_signature_fails_only_that_check(position: int, mask: int) -> None:
    tampered = Receipt(RECEIPT.body, _flip_b64(RECEIPT.coordinator_signature, position, mask))
    verification = verify_receipt(tampered, coordinator_key=COORDINATOR_KEY, output_text=OUTPUT)
    assert verification.failed == ("coordinator_signature",)


@given(st.integers(0, 63), st.integers(1, 255))
def test_changing_any_byte_of_the_miner_signature_fails_the_miner_check(position: int, mask: int) -> None:
    assert RECEIPT.body.miner_signature is not None
    body = dataclasses.replace(RECEIPT.body, miner_signature=_flip_b64(RECEIPT.body.miner_signature, position, mask))
    # Re-signed by the coordinator: the miner check alone must catch a bad miner signature.
    verification = verify_receipt(body.issue(COORDINATOR_SEED), coordinator_key=COORDINATOR_KEY)
    assert verification.failed == ("miner_signature",)


def _sealed_proof(receipts: list[Receipt], index: int) -> ReceiptProof:
    transactions = [tx for receipt in receipts for tx in job_transactions(receipt)]
    block = seal_block(
        previous=None,
        time="2026-02-13T10:05:00Z",
        transactions=transactions,
        receipts=receipts,
        coordinator_seed=COORDINATOR_SEED,
    )
    return receipt_proof(block, receipts[index].receipt_id)


def test_an_inclusion_proof_ties_the_receipt_to_a_signed_block() -> None:
    receipts = [make_receipt(f"job-{n}") for n in range(5)]
    proof = _sealed_proof(receipts, 3)
    verification = verify_receipt(receipts[3], coordinator_key=COORDINATOR_KEY, output_text=OUTPUT, proof=proof)
    assert verification.ok
    assert verification.skipped == ()
    assert verification["inclusion_proof"].detail == "receipt 3 of 5"

    # The proof of another receipt, a tampered path, a forged header signature, a proof for another tree size:
    assert verify_receipt(receipts[2], coordinator_key=COORDINATOR_KEY, proof=proof).failed == ("inclusion_proof",)
    bad_path = dataclasses.replace(proof, proof=InclusionProof(3, 5, (bytes(32), *proof.proof.path[1:])))
    assert verify_receipt(receipts[3], coordinator_key=COORDINATOR_KEY, proof=bad_path).failed == ("inclusion_proof",)
    forged = dataclasses.replace(proof, header_signature=_flip_b64(proof.header_signature, 5))
    assert verify_receipt(receipts[3], coordinator_key=COORDINATOR_KEY, proof=forged).failed == ("block_signature",)
    resized = dataclasses.replace(proof, proof=InclusionProof(3, 4, proof.proof.path))
    failed = verify_receipt(receipts[3], coordinator_key=COORDINATOR_KEY, proof=resized)
    assert failed.failed == ("inclusion_proof",)
    assert "the block has 5" in failed["inclusion_proof"].detail


def test_receipts_and_proofs_round_trip_through_json() -> None:
    assert Receipt.from_json(json.loads(json.dumps(RECEIPT.to_json()))) == RECEIPT
    proof = _sealed_proof([make_receipt(f"job-{n}") for n in range(3)], 1)
    assert ReceiptProof.from_json(json.loads(json.dumps(proof.to_json()))) == proof


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"charged": "803"}, "charged"),
        ({"charged": 1.5}, "charged"),
        ({"client": "ait1notanaddress"}, "client"),
        ({"outcome": "failed"}, "outcome"),
        ({"output_hash": "ABC"}, "output_hash"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"completed_at": "2026-02-13T09:00:00Z"}, "completed_at"),
        ({"miner_signature": "not base64!"}, "miner_signature"),
        ({"coordinator_signature": "AAAA"}, "coordinator_signature"),
        ({"extra": 1}, "extra"),
        ({"type": "aitbc.receipt.v0"}, "type"),
    ],
)
def test_a_malformed_receipt_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(AitbcError) as raised:
        Receipt.from_json({**RECEIPT.to_json(), **change})
    assert raised.value.field == field


def test_a_missing_field_is_named() -> None:
    data = RECEIPT.to_json()
    del data["fee"]
    with pytest.raises(AitbcError, match="fee: is missing"):
        Receipt.from_json(data)


def test_a_canceled_receipt_charges_only_the_tokens_produced() -> None:
    canceled = make_receipt(outcome=Outcome.CANCELED)
    assert canceled.body.charged == 563  # 9 * 62.5 = 562.5 µcr, rounded up; the prompt is not billed
    assert verify_receipt(canceled, coordinator_key=COORDINATOR_KEY).ok


def test_a_non_string_signature_or_key_is_refused_naming_the_field() -> None:
    for field in ("miner_signature", "miner_public_key"):
        with pytest.raises(AitbcError) as raised:
            Receipt.from_json({**RECEIPT.to_json(), field: 12})
        assert raised.value.field == field
