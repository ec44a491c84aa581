"""The coordinator's gRPC server: services, health, reflection, keepalive, graceful stop."""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from aitbc.config import KEEPALIVE_PINGS, SHUTDOWN_GRACE_SECONDS
from aitbc.coordinator.auth import Authenticator
from aitbc.coordinator.clock import Clock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig, ShutdownReport
from aitbc.services.account_service import AccountService
from aitbc.services.explorer_service import ExplorerService
from aitbc.services.interceptors import AuthAndErrorsInterceptor
from aitbc.services.job_service import JobService
from aitbc.services.key_service import KeyService
from aitbc.services.miner_service import MinerService
from aitbc.services.model_service import ModelService
from aitbc.services.network_service import NetworkService
from aitbc.services.readiness import ReadinessHealth
from aitbc.services.receipt_service import ReceiptService
from aitbc.services.result_service import ResultService
from aitbc.services.rpc_context import RequestContextInterceptor
from aitbc.services.timed_store import timed_store
from aitbc.services.webhook_service import WebhookService
from aitbc.store.base import Store
from aitbc.store.urls import open_store
from aitbc.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    explorer_pb2,
    explorer_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    miner_pb2,
    miner_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
    receipts_pb2,
    receipts_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)

if TYPE_CHECKING:
    from aitbc.services.metrics import CoordinatorMetrics
    from aitbc.services.metrics_http import MetricsServer

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    miner_pb2.DESCRIPTOR.services_by_name["MinerService"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
    network_pb2.DESCRIPTOR.services_by_name["NetworkService"].full_name,
    keys_pb2.DESCRIPTOR.services_by_name["KeyService"].full_name,
    accounts_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    receipts_pb2.DESCRIPTOR.services_by_name["ReceiptService"].full_name,
    explorer_pb2.DESCRIPTOR.services_by_name["ExplorerService"].full_name,
    results_pb2.DESCRIPTOR.services_by_name["ResultService"].full_name,
    webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
)

SERVER_OPTIONS: list[tuple[str, int]] = [
    # Ping idle miner streams so a vanished miner is noticed in ~30 s even
    # when no heartbeat is due, and accept the same from clients (whose
    # pings every 20 s would otherwise count as abuse under the 5 min default).
    *KEEPALIVE_PINGS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # gRPC sets SO_REUSEPORT on Linux by default: a second coordinator on a taken port would start and the two
    # would split the connections (a miner could land on the other stack with a key it does not know).
    ("grpc.so_reuseport", 0),
]


class ListenError(OSError):
    """The coordinator cannot listen on the address it was given; the message says why and what to do."""


def _listen_error(listen: str) -> ListenError:
    """Why `listen` cannot be bound: gRPC only says that binding failed, so try the address once more here."""
    host, _, port = listen.rpartition(":")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as problem:
        if problem.errno == errno.EADDRINUSE:
            return ListenError(f"{listen} is already in use; stop the other coordinator or pass --listen")
        return ListenError(f"cannot listen on {listen}: {problem.strerror or problem}")
    except ValueError:
        return ListenError(f"cannot listen on {listen}: expected HOST:PORT")
    return ListenError(f"cannot listen on {listen}")


@dataclass
class RunningCoordinator:
    server: grpc.aio.Server
    port: int
    coordinator: Coordinator
    store: Store
    health: HealthServicer
    authenticator: Authenticator
    # With `metrics_listen`: the metrics and the port that serves them.
    metrics: CoordinatorMetrics | None = None
    metrics_server: MetricsServer | None = field(default=None, repr=False)

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.port if self.metrics_server is not None else None

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> ShutdownReport:
        """Stop taking work, let miners finish for up to `grace` seconds, then close; says what was left over."""
        await self.health.enter_graceful_shutdown()
        report = await self.coordinator.shutdown(grace)
        await self.server.stop(grace=1.0)
        await self.authenticator.close()
        await self.store.close()
        if self.metrics_server is not None:
            await self.metrics_server.close()
        return report


async def start_coordinator(
    store: Store | Path | str,
    listen: str = "127.0.0.1:0",
    config: CoordinatorConfig | None = None,
    *,
    clock: Clock | None = None,
    credentials: grpc.ServerCredentials | None = None,
    metrics_listen: str | None = None,
) -> RunningCoordinator:
    """Serve a coordinator on `listen` over `store` (a `Store`, or a path or URL to open); it owns the store.

    With `credentials` (`aitbc.tls.server_credentials`) it serves TLS only. With `metrics_listen` (HOST:PORT)
    it serves Prometheus metrics there, and times RPCs and store calls; without, neither costs anything.
    Raises `ListenError` when `listen` cannot be bound (taken by another process, say).
    """
    if isinstance(store, Path | str):
        store = await open_store(store)
    owned = store
    metrics: CoordinatorMetrics | None = None
    metrics_server: MetricsServer | None = None
    try:
        if metrics_listen is not None:
            # Here, not at the top: the CLI imports this module, and prometheus_client only serves metrics.
            from aitbc.services.metrics import CoordinatorMetrics
            from aitbc.services.metrics_http import serve_metrics

            metrics = CoordinatorMetrics()
            store = timed_store(store, metrics.store_done)
        coordinator = Coordinator(store, config, clock=clock, observer=metrics)
        await coordinator.start()
        authenticator = Authenticator(store, clock)
        interceptors = [
            RequestContextInterceptor(metrics.rpc_done if metrics is not None else None),
            AuthAndErrorsInterceptor(authenticator),
        ]
        server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(coordinator), server)
        miner_pb2_grpc.add_MinerServiceServicer_to_server(MinerService(coordinator), server)
        models_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(coordinator), server)
        network_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkService(coordinator), server)
        keys_pb2_grpc.add_KeyServiceServicer_to_server(KeyService(authenticator), server)
        accounts_pb2_grpc.add_AccountServiceServicer_to_server(AccountService(coordinator), server)
        receipts_pb2_grpc.add_ReceiptServiceServicer_to_server(ReceiptService(coordinator), server)
        explorer_pb2_grpc.add_ExplorerServiceServicer_to_server(ExplorerService(coordinator), server)
        results_pb2_grpc.add_ResultServiceServicer_to_server(ResultService(coordinator), server)
        webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookService(coordinator), server)
        health = ReadinessHealth(coordinator.ready_miners)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection((*SERVICE_NAMES, reflection.SERVICE_NAME, "grpc.health.v1.Health"), server)
        try:
            if credentials is None:
                port = server.add_insecure_port(listen)
            else:
                port = server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            raise _listen_error(listen) from exc
        if metrics is not None and metrics_listen is not None:
            metrics.bind(coordinator.load)
            try:
                metrics_server = await serve_metrics(metrics.registry, metrics_listen)
            except OSError as exc:
                raise ListenError(f"cannot serve metrics on {metrics_listen}: {exc.strerror or exc}") from exc
        await server.start()
    except BaseException:
        if metrics_server is not None:
            await metrics_server.close()
        await owned.close()
        raise
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("coordinator listening on port %d%s", port, " (TLS)" if credentials is not None else "")
    if metrics_server is not None:
        log.info("metrics on %s, port %d", metrics_listen, metrics_server.port)
    return RunningCoordinator(
        server=server,
        port=port,
        coordinator=coordinator,
        store=store,
        health=health,
        authenticator=authenticator,
        metrics=metrics,
        metrics_server=metrics_server,
    )
