"""ExplorerService: proto ⇄ the coordinator's explorer part, nothing else."""

from __future__ import annotations

from datetime import timedelta

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.explorer import WINDOWS
from aitbc.domain.ledger import Transaction
from aitbc.services.interceptors import Context
from aitbc.services.ledger_convert import header_to_proto, receipt_to_proto
from aitbc.store.base import JobWindow
from aitbc.v1 import explorer_pb2, explorer_pb2_grpc


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
        page = await self._explorer.blocks(request.limit, request.page_token)
        return explorer_pb2.ListBlocksResponse(
            blocks=[header_to_proto(block.header, block.coordinator_signature) for block in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetBlock(self, request: explorer_pb2.GetBlockRequest, context: Context) -> explorer_pb2.GetBlockResponse:
        block = await self._explorer.block(request.height)
        return explorer_pb2.GetBlockResponse(
            header=header_to_proto(block.header, block.coordinator_signature),
            transactions=[transaction_to_proto(tx) for tx in block.transactions],
            receipts=[receipt_to_proto(receipt) for receipt in block.receipts],
        )

    async def ListTransactions(
        self, request: explorer_pb2.ListTransactionsRequest, context: Context
    ) -> explorer_pb2.ListTransactionsResponse:
        page = await self._explorer.transactions(request.limit, request.page_token)
        return explorer_pb2.ListTransactionsResponse(
            transactions=[transaction_to_proto(tx) for tx in page.items], next_page_token=page.next_page_token
        )

    async def ListRecentReceipts(
        self, request: explorer_pb2.ListRecentReceiptsRequest, context: Context
    ) -> explorer_pb2.ListRecentReceiptsResponse:
        page = await self._explorer.receipts(request.limit, request.page_token)
        return explorer_pb2.ListRecentReceiptsResponse(
            receipts=[receipt_to_proto(receipt) for receipt in page.items], next_page_token=page.next_page_token
        )

    async def GetStats(self, request: explorer_pb2.GetStatsRequest, context: Context) -> explorer_pb2.GetStatsResponse:
        stats = await self._explorer.stats()
        ledger, jobs = stats.ledger, stats.jobs
        return explorer_pb2.GetStatsResponse(
            height=ledger.height,
            transactions=ledger.transactions,
            receipts=ledger.receipts,
            minted=ledger.minted,
            held=ledger.held,
            charged=ledger.charged,
            fees=ledger.fees,
            jobs_submitted=jobs.submitted,
            jobs_completed=jobs.completed,
            tokens_served=jobs.tokens_served,
            miners_online=stats.miners_online,
            models_served=stats.models_served,
            last_minute=_throughput(stats.last_minute, WINDOWS[0]),
            last_hour=_throughput(stats.last_hour, WINDOWS[1]),
        )


def _throughput(window: JobWindow, span: timedelta) -> explorer_pb2.Throughput:
    return explorer_pb2.Throughput(
        jobs_completed=window.jobs_completed,
        tokens=window.tokens,
        tokens_per_second=window.tokens / span.total_seconds(),
    )
