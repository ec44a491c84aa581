"""Proto ⇄ domain for what the ledger publishes: receipts, block headers and receipt proofs.

Pure conversions, importing nothing of the coordinator, so that `aitbc verify` and the SDK can
decode what the services send.
"""

from __future__ import annotations

from typing import Any

from aitbc.domain.blocks import BlockHeader, ReceiptProof
from aitbc.domain.merkle import InclusionProof
from aitbc.domain.receipts import Receipt
from aitbc.v1 import blocks_pb2, receipts_pb2

# The fields of the signed JSON that may be null; in the message they are unset instead.
_NULLABLE = ("miner_public_key", "miner_signature")


def receipt_to_proto(receipt: Receipt) -> receipts_pb2.Receipt:
    values = {key: value for key, value in receipt.to_json().items() if value is not None}
    return receipts_pb2.Receipt(**values)


def receipt_from_proto(message: receipts_pb2.Receipt) -> Receipt:
    """The receipt exactly as signed: unset nullable fields are null again."""
    data: dict[str, Any] = {field.name: getattr(message, field.name) for field in message.DESCRIPTOR.fields}
    for name in _NULLABLE:
        data[name] = data[name] if message.HasField(name) else None
    return Receipt.from_json(data)


def header_to_proto(header: BlockHeader, signature: str) -> blocks_pb2.BlockHeader:
    return blocks_pb2.BlockHeader(
        height=header.height,
        block_hash=header.block_hash,
        previous_hash=header.previous_hash,
        time=header.time,
        tx_root=header.tx_root,
        tx_count=header.tx_count,
        receipts_root=header.receipts_root,
        receipt_count=header.receipt_count,
        coordinator_signature=signature,
    )


def header_from_proto(message: blocks_pb2.BlockHeader) -> tuple[BlockHeader, str]:
    """The header and its signature; `block_hash` is recomputed by whoever checks, never trusted."""
    header = BlockHeader(
        height=message.height,
        previous_hash=message.previous_hash,
        time=message.time,
        tx_root=message.tx_root,
        tx_count=message.tx_count,
        receipts_root=message.receipts_root,
        receipt_count=message.receipt_count,
    )
    return header, message.coordinator_signature


def proof_to_proto(proof: ReceiptProof) -> blocks_pb2.ReceiptProof:
    inclusion = proof.proof
    return blocks_pb2.ReceiptProof(
        block=header_to_proto(proof.header, proof.header_signature),
        proof=blocks_pb2.InclusionProof(
            leaf_index=inclusion.leaf_index, tree_size=inclusion.tree_size, path=[node.hex() for node in inclusion.path]
        ),
    )


def proof_from_proto(message: blocks_pb2.ReceiptProof) -> ReceiptProof:
    header, signature = header_from_proto(message.block)
    inclusion = InclusionProof.from_json(
        {"leaf_index": message.proof.leaf_index, "tree_size": message.proof.tree_size, "path": list(message.proof.path)}
    )
    return ReceiptProof(header, signature, inclusion)
