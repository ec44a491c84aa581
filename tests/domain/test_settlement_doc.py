"""docs/settlement.md's worked example is what the code produces, and its standalone script verifies it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from aitbc.domain.blocks import ReceiptProof, receipt_proof
from aitbc.domain.canonical import sha256_hex
from aitbc.domain.signing import encode_key
from aitbc.domain.verify import verify_receipt
from tests.domain.settlement_fixtures import (
    COORDINATOR_KEY,
    COORDINATOR_SEED,
    MINER_KEY,
    MINER_SEED,
    OUTPUT,
    job_transactions,
    make_chain,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "settlement.md").read_text()
BLOCK = make_chain(jobs_per_block=3, blocks=2)[1]
RECEIPT = BLOCK.receipts[1]
PROOF = receipt_proof(BLOCK, RECEIPT.receipt_id)


def example(name: str) -> str:
    """The fenced block right after `<!-- example-NAME -->`."""
    match = re.search(rf"<!-- example-{name} -->\n```[a-z]*\n(.*?)```", DOC, re.DOTALL)
    assert match is not None, f"no example {name!r} in docs/settlement.md"
    return match.group(1)


def test_the_keys_in_the_doc_are_the_test_keys() -> None:
    for value in (COORDINATOR_SEED.hex(), encode_key(COORDINATOR_KEY), MINER_SEED.hex(), encode_key(MINER_KEY)):
        assert value in DOC


def test_the_receipt_attestation_and_signed_bytes_are_what_the_code_makes() -> None:
    assert json.loads(example("receipt")) == RECEIPT.to_json()
    assert example("receipt") == json.dumps(RECEIPT.to_json(), indent=2, ensure_ascii=False) + "\n"
    assert example("attestation") == RECEIPT.body.attestation().canonical_bytes().decode() + "\n"
    assert example("signed-bytes") == RECEIPT.body.signing_bytes().decode() + "\n"
    assert sha256_hex(RECEIPT.body.signing_bytes()) in DOC
    assert json.loads(example("settle")) == job_transactions(RECEIPT)[1].to_json()


def test_the_proof_and_the_checks_are_what_the_code_makes() -> None:
    assert json.loads(example("proof")) == PROOF.to_json()
    verification = verify_receipt(
        RECEIPT, coordinator_key=COORDINATOR_KEY, output_text=OUTPUT, proof=PROOF, miner_key=MINER_KEY
    )
    lines = [f"{check.name:22} {check.status:8} {check.detail}" for check in verification.checks]
    assert example("checks") == "\n".join(lines) + "\n"


def _run_standalone(receipt: dict[str, Any], proof: dict[str, Any]) -> None:
    exec(compile(example("verify"), "docs/settlement.md", "exec"), {"receipt": receipt, "proof": proof})


def test_the_standalone_script_verifies_the_example() -> None:
    _run_standalone(json.loads(example("receipt")), json.loads(example("proof")))


@pytest.mark.parametrize("field", ["charged", "output_hash", "miner_signed"])
def test_the_standalone_script_rejects_a_tampered_receipt(field: str) -> None:
    receipt = json.loads(example("receipt"))
    receipt[field] = {"charged": 804, "output_hash": "0" * 64, "miner_signed": False}[field]
    with pytest.raises((InvalidSignature, AssertionError)):  # whichever check comes first
        _run_standalone(receipt, json.loads(example("proof")))


def test_the_standalone_script_rejects_a_proof_for_another_receipt() -> None:
    other = ReceiptProof.from_json(json.loads(example("proof")))
    assert other == PROOF
    with pytest.raises(AssertionError):
        _run_standalone(BLOCK.receipts[0].to_json(), PROOF.to_json())
