"""Blocks: batches of ledger transactions and receipts, hash-chained and signed by the coordinator.

A header holds the height, the previous block's hash, the time, and the
RFC 6962 Merkle roots (hex) and counts of the block's transactions and
receipts. Its JSON form is `type`, those fields and `coordinator_signature`.
The coordinator signs the RFC 8785 bytes of the header without the signature,
and the block hash is sha256 of those same bytes: a hash is known before
signing and does not depend on how the signature is spelled. The genesis
block has height 0 and a previous hash of 64 zeros.

Merkle leaves are the RFC 8785 bytes of each whole transaction and each whole
receipt (coordinator signature included), in block order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aitbc.domain.canonical import (
    b64url_decode,
    canonical_json,
    parse_time,
    require_digest,
    require_int,
    sha256_hex,
)
from aitbc.domain.errors import invalid_argument
from aitbc.domain.ledger import Transaction
from aitbc.domain.merkle import InclusionProof, inclusion_proof, merkle_root
from aitbc.domain.receipts import Receipt
from aitbc.domain.signing import SIGNATURE_BYTES, sign_b64

HEADER_TYPE = "aitbc.block_header.v1"
GENESIS_PREVIOUS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class BlockHeader:
    height: int
    previous_hash: str
    time: str  # RFC 3339 UTC
    tx_root: str
    tx_count: int
    receipts_root: str
    receipt_count: int

    def __post_init__(self) -> None:
        require_int(self.height, field="height")
        require_digest(self.previous_hash, field="previous_hash")
        parse_time(self.time, field="time")
        require_digest(self.tx_root, field="tx_root")
        require_digest(self.receipts_root, field="receipts_root")
        require_int(self.tx_count, field="tx_count")
        require_int(self.receipt_count, field="receipt_count")

    def to_json(self) -> dict[str, Any]:
        return {"type": HEADER_TYPE, **asdict(self)}

    def signing_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def block_hash(self) -> str:
        return sha256_hex(self.signing_bytes())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> tuple[BlockHeader, str]:
        """A header and its signature from the header's JSON object."""
        if data.get("type") != HEADER_TYPE:
            raise invalid_argument("type", f"must be {HEADER_TYPE!r}, got {data.get('type')!r}")
        names = ("height", "previous_hash", "time", "tx_root", "tx_count", "receipts_root", "receipt_count")
        for name in (*names, "coordinator_signature"):
            if name not in data:
                raise invalid_argument(name, "is missing")
        signature = data["coordinator_signature"]
        if not isinstance(signature, str):
            raise invalid_argument("coordinator_signature", "must be a base64url string")
        return cls(**{name: data[name] for name in names}), signature


def tx_root_of(transactions: Sequence[Transaction]) -> str:
    return merkle_root([tx.canonical_bytes() for tx in transactions]).hex()


def receipts_root_of(receipts: Sequence[Receipt]) -> str:
    return merkle_root([receipt.canonical_bytes() for receipt in receipts]).hex()


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    coordinator_signature: str  # base64url Ed25519 signature of header.signing_bytes()
    transactions: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]

    def __post_init__(self) -> None:
        b64url_decode(self.coordinator_signature, field="coordinator_signature", length=SIGNATURE_BYTES)

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def block_hash(self) -> str:
        return self.header.block_hash

    def to_json(self) -> dict[str, Any]:
        return {
            "header": {**self.header.to_json(), "coordinator_signature": self.coordinator_signature},
            "transactions": [tx.to_json() for tx in self.transactions],
            "receipts": [receipt.to_json() for receipt in self.receipts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Block:
        header, signature = BlockHeader.from_json(_object(data.get("header"), "header"))
        transactions = _objects(data.get("transactions"), "transactions")
        receipts = _objects(data.get("receipts"), "receipts")
        return cls(
            header,
            signature,
            tuple(Transaction.from_json(tx) for tx in transactions),
            tuple(Receipt.from_json(receipt) for receipt in receipts),
        )


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid_argument(field, "must be an object")
    return value


def _objects(value: object, field: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid_argument(field, "must be a list of objects")
    return value


def seal_block(
    *,
    previous: BlockHeader | None,
    time: str,
    transactions: Sequence[Transaction],
    receipts: Sequence[Receipt],
    coordinator_seed: bytes,
) -> Block:
    """The next block after `previous` (None: the genesis block), signed with the coordinator's key."""
    header = BlockHeader(
        height=0 if previous is None else previous.height + 1,
        previous_hash=GENESIS_PREVIOUS_HASH if previous is None else previous.block_hash,
        time=time,
        tx_root=tx_root_of(transactions),
        tx_count=len(transactions),
        receipts_root=receipts_root_of(receipts),
        receipt_count=len(receipts),
    )
    signature = sign_b64(coordinator_seed, header.signing_bytes())
    return Block(header, signature, tuple(transactions), tuple(receipts))


@dataclass(frozen=True, slots=True)
class ReceiptProof:
    """What a receipt's holder needs to show it was sealed: the signed header and the inclusion proof."""

    header: BlockHeader
    header_signature: str
    proof: InclusionProof

    def to_json(self) -> dict[str, Any]:
        return {
            "block": {**self.header.to_json(), "coordinator_signature": self.header_signature},
            "proof": self.proof.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReceiptProof:
        header, signature = BlockHeader.from_json(_object(data.get("block"), "block"))
        return cls(header, signature, InclusionProof.from_json(_object(data.get("proof"), "proof")))


def receipt_proof(block: Block, receipt_id: str) -> ReceiptProof:
    """The proof that the receipt `receipt_id` is in `block`."""
    leaves = [receipt.canonical_bytes() for receipt in block.receipts]
    for index, receipt in enumerate(block.receipts):
        if receipt.receipt_id == receipt_id:
            return ReceiptProof(block.header, block.coordinator_signature, inclusion_proof(leaves, index))
    raise KeyError(f"receipt {receipt_id!r} is not in block {block.height}")
