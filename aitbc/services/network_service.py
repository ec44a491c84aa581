"""NetworkService: the miners the coordinator knows, with their reputation."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf import timestamp_pb2

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import MinerSession
from aitbc.coordinator.network_view import MinerListing
from aitbc.domain.catalog import gpu_tier
from aitbc.services.interceptors import Context
from aitbc.v1 import miner_pb2, network_pb2, network_pb2_grpc


class NetworkService(network_pb2_grpc.NetworkServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def ListMiners(
        self, request: network_pb2.ListMinersRequest, context: Context
    ) -> network_pb2.ListMinersResponse:
        overview = await self._coordinator.network.miners()
        miners = [self._summary(listing) for listing in overview]
        # Connected miners first, best reputation first.
        miners.sort(key=lambda miner: (not miner.online, -miner.reputation.score, miner.miner_id))
        return network_pb2.ListMinersResponse(miners=miners)

    def _summary(self, listing: MinerListing) -> network_pb2.MinerSummary:
        record, session, remote = listing.record, listing.session, listing.remote
        stats = record.stats
        last_seen = timestamp_pb2.Timestamp()
        last_seen.FromDatetime(record.last_seen if session is None else self._last_sign_of_life(session))
        summary = network_pb2.MinerSummary(
            miner_id=record.miner_id,
            online=listing.online,
            models=record.models if remote is None else remote.models,
            backend=record.backend if remote is None else remote.backend,
            last_seen=last_seen,
            reputation=network_pb2.MinerReputation(
                score=listing.score,
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
        elif remote is not None:
            summary.connection = remote.connection
            summary.gpus.extend(
                miner_pb2.GpuInfo(name=gpu.name, vram_bytes=gpu.vram_bytes, count=gpu.count) for gpu in remote.gpus
            )
            summary.tier = remote.tier
            summary.max_concurrency = remote.max_concurrency
            summary.free_slots = listing.free_slots
            summary.draining = remote.draining
        return summary

    def _last_sign_of_life(self, session: MinerSession) -> datetime:
        """A connected miner's last heartbeat or message, in wall time (the session keeps it on the monotonic clock)."""
        clock = self._coordinator.clock
        return clock.now() - timedelta(seconds=clock.monotonic() - session.last_seen)
