"""The coordinator's gRPC server: services, health, reflection, keepalive, graceful stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from aitbc.config import KEEPALIVE_PINGS
from aitbc.coordinator.auth import Authenticator
from aitbc.coordinator.clock import Clock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.services.account_service import AccountService
from aitbc.services.explorer_service import ExplorerService
from aitbc.services.interceptors import AuthAndErrorsInterceptor
from aitbc.services.job_service import JobService
from aitbc.services.miner_service import MinerService
from aitbc.services.model_service import ModelService
from aitbc.services.network_service import NetworkService
from aitbc.services.receipt_service import ReceiptService
from aitbc.store.base import Store
from aitbc.store.urls import open_store
from aitbc.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    explorer_pb2,
    explorer_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    miner_pb2,
    miner_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
    receipts_pb2,
    receipts_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    miner_pb2.DESCRIPTOR.services_by_name["MinerService"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
    network_pb2.DESCRIPTOR.services_by_name["NetworkService"].full_name,
    accounts_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    receipts_pb2.DESCRIPTOR.services_by_name["ReceiptService"].full_name,
    explorer_pb2.DESCRIPTOR.services_by_name["ExplorerService"].full_name,
)

SERVER_OPTIONS: list[tuple[str, int]] = [
    # Ping idle miner streams so a vanished miner is noticed in ~30 s even
    # when no heartbeat is due, and accept the same from clients (whose
    # pings every 20 s would otherwise count as abuse under the 5 min default).
    *KEEPALIVE_PINGS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


@dataclass
class RunningCoordinator:
    server: grpc.aio.Server
    port: int
    coordinator: Coordinator
    store: Store
    health: HealthServicer

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, let miners finish for up to `grace` seconds, then close."""
        await self.health.enter_graceful_shutdown()
        await self.coordinator.shutdown(grace)
        await self.server.stop(grace=1.0)
        await self.store.close()


async def start_coordinator(
    store: Store | Path | str,
    listen: str = "127.0.0.1:0",
    config: CoordinatorConfig | None = None,
    *,
    clock: Clock | None = None,
) -> RunningCoordinator:
    """Serve a coordinator on `listen` over `store` (a `Store`, or a path or URL to open); it owns the store."""
    if isinstance(store, Path | str):
        store = await open_store(store)
    try:
        coordinator = Coordinator(store, config, clock=clock)
        await coordinator.start()
        server = grpc.aio.server(interceptors=[AuthAndErrorsInterceptor(Authenticator(store))], options=SERVER_OPTIONS)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(coordinator), server)
        miner_pb2_grpc.add_MinerServiceServicer_to_server(MinerService(coordinator), server)
        models_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(coordinator), server)
        network_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkService(coordinator), server)
        accounts_pb2_grpc.add_AccountServiceServicer_to_server(AccountService(coordinator), server)
        receipts_pb2_grpc.add_ReceiptServiceServicer_to_server(ReceiptService(coordinator), server)
        explorer_pb2_grpc.add_ExplorerServiceServicer_to_server(ExplorerService(coordinator), server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection((*SERVICE_NAMES, reflection.SERVICE_NAME, "grpc.health.v1.Health"), server)
        port = server.add_insecure_port(listen)
        await server.start()
    except BaseException:
        await store.close()
        raise
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("coordinator listening on port %d", port)
    return RunningCoordinator(server=server, port=port, coordinator=coordinator, store=store, health=health)
