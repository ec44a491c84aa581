"""Offline receipt verification, one named check at a time.

Each check passes, fails or is skipped (the input it needs was not given, or
the miner did not sign), with a sentence saying why, so that a CLI can print
every line and a test can see exactly which check failed. The checks, in order:

    coordinator_signature  the coordinator's Ed25519 signature over the receipt body
    miner_signature        the miner's signature over its attestation (skipped if it did not sign)
    amounts                charge, fee and earnings agree with counts, prices and fee rate
    output_hash            sha256 of the result text (skipped without the text)
    block_signature        the coordinator's signature over the block header (skipped without a proof)
    inclusion_proof        the receipt is a leaf under the header's receipts root (skipped without a proof)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aitbc.domain.blocks import ReceiptProof
from aitbc.domain.canonical import text_hash
from aitbc.domain.merkle import verify_inclusion
from aitbc.domain.receipts import Receipt
from aitbc.domain.signing import decode_key, encode_key, verify_b64

CHECK_NAMES = (
    "coordinator_signature",
    "miner_signature",
    "amounts",
    "output_hash",
    "block_signature",
    "inclusion_proof",
)


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True, slots=True)
class ReceiptVerification:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """No check failed. Skipped checks are not failures: see `skipped` for what was not checked."""
        return not self.failed

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if check.status is CheckStatus.FAILED)

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if check.status is CheckStatus.SKIPPED)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def _passed(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.PASSED, detail)


def _failed(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.FAILED, detail)


def _skipped(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.SKIPPED, detail)


def verify_receipt(
    receipt: Receipt,
    *,
    coordinator_key: bytes,
    output_text: str | None = None,
    proof: ReceiptProof | None = None,
    miner_key: bytes | None = None,
    require_miner_signature: bool = False,
) -> ReceiptVerification:
    """Every check on `receipt`, given the coordinator's public key and whatever else is at hand.

    `miner_key`, where the verifier knows the miner's registered key, must be
    the key the receipt names; `require_miner_signature` turns an unsigned
    receipt's skipped miner check into a failure.
    """
    body = receipt.body
    if verify_b64(coordinator_key, body.signing_bytes(), receipt.coordinator_signature):
        coordinator = _passed("coordinator_signature", f"signed by {encode_key(coordinator_key)}")
    else:
        coordinator = _failed("coordinator_signature", "does not verify with the coordinator's key")
    problems = body.amount_problems()
    amounts = _failed("amounts", "; ".join(problems)) if problems else _passed("amounts", f"charged {body.charged} µcr")
    return ReceiptVerification(
        (
            coordinator,
            _miner_check(receipt, miner_key, require_miner_signature),
            amounts,
            _output_check(receipt, output_text),
            *_proof_checks(receipt, proof, coordinator_key),
        )
    )


def _miner_check(receipt: Receipt, miner_key: bytes | None, required: bool) -> Check:
    name = "miner_signature"
    body = receipt.body
    if not body.miner_signed and body.miner_signature is None:
        detail = "the miner did not sign this receipt (miner_signed: false)"
        return _failed(name, detail) if required else _skipped(name, detail)
    if body.miner_signed != (body.miner_signature is not None):
        return _failed(name, f"miner_signed is {str(body.miner_signed).lower()} but miner_signature is not consistent")
    if body.miner_public_key is None:
        return _failed(name, "a miner signature without miner_public_key cannot be checked")
    named_key = decode_key(body.miner_public_key, field="miner_public_key")
    if miner_key is not None and named_key != miner_key:
        return _failed(name, f"the receipt names key {body.miner_public_key}, not the miner's {encode_key(miner_key)}")
    assert body.miner_signature is not None  # miner_signed and a signature go together (checked above)
    if not verify_b64(named_key, body.attestation().canonical_bytes(), body.miner_signature):
        return _failed(name, "does not verify with miner_public_key over the attestation")
    return _passed(name, f"signed by {body.miner_public_key}")


def _output_check(receipt: Receipt, output_text: str | None) -> Check:
    name = "output_hash"
    if output_text is None:
        return _skipped(name, "no result text given")
    found = text_hash(output_text)
    if found != receipt.body.output_hash:
        return _failed(name, f"the result hashes to {found}, the receipt says {receipt.body.output_hash}")
    return _passed(name, f"the result hashes to {found}")


def _proof_checks(receipt: Receipt, proof: ReceiptProof | None, coordinator_key: bytes) -> tuple[Check, Check]:
    if proof is None:
        return _skipped("block_signature", "no block given"), _skipped("inclusion_proof", "no proof given")
    header = proof.header
    if verify_b64(coordinator_key, header.signing_bytes(), proof.header_signature):
        block = _passed("block_signature", f"block {header.height} ({header.block_hash}) signed by the coordinator")
    else:
        block = _failed("block_signature", f"block {header.height}'s signature does not verify")
    if proof.proof.tree_size != header.receipt_count:
        return block, _failed(
            "inclusion_proof", f"proof is for {proof.proof.tree_size} receipts, the block has {header.receipt_count}"
        )
    if not verify_inclusion(receipt.canonical_bytes(), proof.proof, bytes.fromhex(header.receipts_root)):
        return block, _failed("inclusion_proof", f"does not lead to block {header.height}'s receipts root")
    return block, _passed("inclusion_proof", f"receipt {proof.proof.leaf_index} of {header.receipt_count}")
