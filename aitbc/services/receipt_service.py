"""ReceiptService: signed receipts by id, and a client's newest ones."""

from __future__ import annotations

from typing import Any

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.receipts import Receipt
from aitbc.domain.signing import encode_key
from aitbc.services.interceptors import Context, current_principal
from aitbc.v1 import receipts_pb2, receipts_pb2_grpc

# The fields of the signed JSON that may be null; in the message they are unset instead.
_NULLABLE = ("miner_public_key", "miner_signature")


def receipt_to_proto(receipt: Receipt) -> receipts_pb2.Receipt:
    values = {key: value for key, value in receipt.to_json().items() if value is not None}
    return receipts_pb2.Receipt(**values)


def receipt_from_proto(message: receipts_pb2.Receipt) -> Receipt:
    """The receipt exactly as signed: unset nullable fields are null again (the SDK and `aitbc verify` use it)."""
    data: dict[str, Any] = {field.name: getattr(message, field.name) for field in message.DESCRIPTOR.fields}
    for name in _NULLABLE:
        data[name] = data[name] if message.HasField(name) else None
    return Receipt.from_json(data)


class ReceiptService(receipts_pb2_grpc.ReceiptServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def GetReceipt(
        self, request: receipts_pb2.GetReceiptRequest, context: Context
    ) -> receipts_pb2.GetReceiptResponse:
        receipt = await self._coordinator.receipt(current_principal(), request.receipt_id)
        return receipts_pb2.GetReceiptResponse(
            receipt=receipt_to_proto(receipt), coordinator_public_key=encode_key(self._coordinator.public_key)
        )

    async def ListReceipts(
        self, request: receipts_pb2.ListReceiptsRequest, context: Context
    ) -> receipts_pb2.ListReceiptsResponse:
        receipts = await self._coordinator.receipts(current_principal(), client=request.client, limit=request.limit)
        return receipts_pb2.ListReceiptsResponse(receipts=[receipt_to_proto(receipt) for receipt in receipts])
