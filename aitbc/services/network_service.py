"""NetworkService: the miners the coordinator knows, with their reputation."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf import timestamp_pb2

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import MinerSession
from aitbc.domain.catalog import gpu_tier
from aitbc.services.interceptors import Context, current_principal
from aitbc.store.base import MinerRecord
from aitbc.v1 import miner_pb2, network_pb2, network_pb2_grpc


class NetworkService(network_pb2_grpc.NetworkServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def ListMiners(
        self, request: network_pb2.ListMinersRequest, context: Context
    ) -> network_pb2.ListMinersResponse:
        overview = self._coordinator.miner_overview(current_principal())
        miners = [self._summary(record, session) for record, session in overview]
        # Connected miners first, best reputation first.
        miners.sort(key=lambda miner: (not miner.online, -miner.reputation.score, miner.miner_id))
        return network_pb2.ListMinersResponse(miners=miners)

    def _summary(self, record: MinerRecord, session: MinerSession | None) -> network_pb2.MinerSummary:
        stats = record.stats
        last_seen = timestamp_pb2.Timestamp()
        last_seen.FromDatetime(record.last_seen if session is None else self._last_sign_of_life(session))
        summary = network_pb2.MinerSummary(
            miner_id=record.miner_id,
            online=session is not None,
            models=record.models,
            backend=record.backend,
            last_seen=last_seen,
            reputation=network_pb2.MinerReputation(
                score=self._coordinator.reputation(record.miner_id),
                completions=stats.completions,
                failures=stats.failures,
                cancellations=stats.cancellations,
                lease_expiries=stats.lease_expiries,
                tokens_per_second=stats.tokens_per_second,
                time_to_first_token_seconds=stats.ttft_seconds,
            ),
        )
        if session is not None:
            info = session.info
            summary.connection = "polling" if session.polls else "stream"
            summary.gpus.extend(
                miner_pb2.GpuInfo(name=gpu.name, vram_bytes=gpu.vram_bytes, count=gpu.count) for gpu in info.gpus
            )
            summary.tier = gpu_tier(info.max_vram_bytes)
            summary.max_concurrency = info.max_concurrency
            summary.free_slots = session.free_slots
            summary.draining = session.draining
        return summary

    def _last_sign_of_life(self, session: MinerSession) -> datetime:
        """A connected miner's last heartbeat or message, in wall time (the session keeps it on the monotonic clock)."""
        clock = self._coordinator.clock
        return clock.now() - timedelta(seconds=clock.monotonic() - session.last_seen)
