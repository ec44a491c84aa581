"""ReceiptService: a signed receipt by id with its block's proof (public), and a client's newest receipts."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.signing import encode_key
from aitbc.services.interceptors import Context, current_principal
from aitbc.services.ledger_convert import proof_to_proto, receipt_to_proto
from aitbc.v1 import receipts_pb2, receipts_pb2_grpc


class ReceiptService(receipts_pb2_grpc.ReceiptServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def GetReceipt(
        self, request: receipts_pb2.GetReceiptRequest, context: Context
    ) -> receipts_pb2.GetReceiptResponse:
        receipt, proof = await self._coordinator.receipt(request.receipt_id)
        return receipts_pb2.GetReceiptResponse(
            receipt=receipt_to_proto(receipt),
            coordinator_public_key=encode_key(self._coordinator.public_key),
            proof=proof_to_proto(proof) if proof is not None else None,
        )

    async def ListReceipts(
        self, request: receipts_pb2.ListReceiptsRequest, context: Context
    ) -> receipts_pb2.ListReceiptsResponse:
        receipts = await self._coordinator.receipts(current_principal(), client=request.client, limit=request.limit)
        return receipts_pb2.ListReceiptsResponse(receipts=[receipt_to_proto(receipt) for receipt in receipts])
