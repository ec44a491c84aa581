"""ExplorerService: proto ⇄ the coordinator's explorer part, nothing else."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.blocks import Block
from aitbc.domain.ledger import Transaction
from aitbc.services.interceptors import Context
from aitbc.services.receipt_service import receipt_to_proto
from aitbc.v1 import explorer_pb2, explorer_pb2_grpc


def header_to_proto(block: Block) -> explorer_pb2.BlockHeader:
    header = block.header
    return explorer_pb2.BlockHeader(
        height=header.height,
        block_hash=block.block_hash,
        previous_hash=header.previous_hash,
        time=header.time,
        tx_root=header.tx_root,
        tx_count=header.tx_count,
        receipts_root=header.receipts_root,
        receipt_count=header.receipt_count,
        coordinator_signature=block.coordinator_signature,
    )


def transaction_to_proto(tx: Transaction) -> explorer_pb2.LedgerTransaction:
    return explorer_pb2.LedgerTransaction(
        tx_id=tx.tx_id,
        kind=tx.kind.value,
        job_id=tx.job_id or "",
        postings=[explorer_pb2.Posting(account=p.account, bucket=p.bucket.value, amount=p.amount) for p in tx.postings],
        tx_hash=tx.tx_hash,
    )


class ExplorerService(explorer_pb2_grpc.ExplorerServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._explorer = coordinator.explorer

    async def ListBlocks(
        self, request: explorer_pb2.ListBlocksRequest, context: Context
    ) -> explorer_pb2.ListBlocksResponse:
        blocks = await self._explorer.blocks(request.limit)
        return explorer_pb2.ListBlocksResponse(blocks=[header_to_proto(block) for block in blocks])

    async def GetBlock(self, request: explorer_pb2.GetBlockRequest, context: Context) -> explorer_pb2.GetBlockResponse:
        block = await self._explorer.block(request.height)
        return explorer_pb2.GetBlockResponse(
            header=header_to_proto(block),
            transactions=[transaction_to_proto(tx) for tx in block.transactions],
            receipts=[receipt_to_proto(receipt) for receipt in block.receipts],
        )

    async def ListTransactions(
        self, request: explorer_pb2.ListTransactionsRequest, context: Context
    ) -> explorer_pb2.ListTransactionsResponse:
        transactions = await self._explorer.transactions(request.limit)
        return explorer_pb2.ListTransactionsResponse(transactions=[transaction_to_proto(tx) for tx in transactions])

    async def ListRecentReceipts(
        self, request: explorer_pb2.ListRecentReceiptsRequest, context: Context
    ) -> explorer_pb2.ListRecentReceiptsResponse:
        receipts = await self._explorer.receipts(request.limit)
        return explorer_pb2.ListRecentReceiptsResponse(receipts=[receipt_to_proto(receipt) for receipt in receipts])

    async def GetStats(self, request: explorer_pb2.GetStatsRequest, context: Context) -> explorer_pb2.GetStatsResponse:
        stats = await self._explorer.stats()
        return explorer_pb2.GetStatsResponse(
            height=stats.height,
            transactions=stats.transactions,
            receipts=stats.receipts,
            minted=stats.minted,
            held=stats.held,
            charged=stats.charged,
            fees=stats.fees,
        )
