"""Running the gateway: `serve_gateway` for `aitbc gateway` and `aitbc up`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from aitbc import config
from aitbc.config import coordinator_address
from aitbc.logs import add_log_format_argument
from aitbc.targets import channel_target
from aitbc.tls import ClientTls, add_client_tls_arguments, client_tls_from_args
from gateway.app import create_app
from gateway.health import DEFAULT_READY_MIN_MINERS
from gateway.limits import DEFAULT_MAX_BODY_BYTES, GatewayLimits
from gateway.options import GatewayOptions


def split_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:8080`) as host and port."""
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text}")
    return int(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """`--coordinator` (None unless given: resolve it with `aitbc.config.coordinator_address`), `--listen`
    and `--max-body-bytes`."""
    parser.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help=f"coordinator gRPC address (default: ${config.ENV_COORDINATOR}, else {config.DEFAULT_GRPC_ADDRESS})",
    )
    parser.add_argument(
        "--listen", default=config.DEFAULT_HTTP_ADDRESS, metavar="HOST:PORT", help="HTTP address (default: %(default)s)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest request body or WebSocket message accepted; larger ones get 413 / close 1009 "
        "(default: %(default)s, 8 MiB)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain: serve HTTPS (with --tls-key)"
    )
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    # The channel to the coordinator: --tls, --tls-ca, --tls-client-cert, --tls-client-key.
    add_client_tls_arguments(parser, cert_flag="--tls-client-cert")
    parser.add_argument(
        "--ready-min-miners",
        type=_non_negative_int,
        default=DEFAULT_READY_MIN_MINERS,
        metavar="N",
        help="/readyz answers 503 while fewer miners are online and taking jobs; 0 checks only the coordinator"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve Prometheus metrics at /metrics, without a key (default: on)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from ORIGIN (e.g. https://app.example.com, or * for any) call the gateway; "
        "repeat for several (default: none, no CORS)",
    )
    parser.add_argument(
        "--openai-queue",
        action="store_true",
        help="OpenAI requests wait in the queue for a miner instead of failing with 503 at once; "
        "/v1/models then lists every text model of the catalog",
    )
    parser.add_argument(
        "--wei-per-credit",
        type=_non_negative_int,
        default=None,
        metavar="WEI",
        help="the conversion rate for seed 004's POST /api/jobs/submit estimatedCostWei "
        "(1 credit = 1,000,000 µcr; default: unset, and that route answers 503)",
    )

    add_log_format_argument(parser)


def options_from_arguments(ns: argparse.Namespace) -> GatewayOptions:
    """The GatewayOptions the flags of `add_gateway_arguments` ask for."""
    return GatewayOptions(
        cors_origins=tuple(getattr(ns, "cors_origin", None) or ()),
        openai_queue=bool(getattr(ns, "openai_queue", False)),
        wei_per_credit=getattr(ns, "wei_per_credit", None),
    )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What `aitbc gateway` serves besides the addresses."""

    limits: GatewayLimits = field(default_factory=GatewayLimits)
    coordinator_tls: ClientTls | None = None
    # HTTPS: the certificate chain and key files.
    https_cert: Path | None = None
    https_key: Path | None = None
    ready_min_miners: int = DEFAULT_READY_MIN_MINERS
    metrics: bool = True
    # Our own access log (one line per request, with its id and route); uvicorn's is off.
    access_log: bool = True
    log_format: str = "text"
    options: GatewayOptions = field(default_factory=GatewayOptions)


def settings_from_args(ns: argparse.Namespace) -> tuple[str, GatewaySettings]:
    """The coordinator's target and the gateway's settings; ValueError for options that do not fit together."""
    target, tls = client_tls_from_args(ns, coordinator_address(ns.coordinator))
    channel_target(target)  # a replica list (docs/scaling.md) is checked here, before the server starts
    if (ns.tls_cert is None) != (ns.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together: HTTPS needs both")
    for path in (ns.tls_cert, ns.tls_key):
        if path is not None and not path.is_file():
            raise ValueError(f"cannot read {path}")
    settings = GatewaySettings(
        limits=GatewayLimits(max_body_bytes=ns.max_body_bytes),
        coordinator_tls=tls,
        https_cert=ns.tls_cert,
        https_key=ns.tls_key,
        ready_min_miners=ns.ready_min_miners,
        metrics=ns.metrics,
        log_format=ns.log_format,
        options=options_from_arguments(ns),
    )
    return target, settings


async def serve_gateway(
    coordinator_target: str,
    listen: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    settings: GatewaySettings | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (`aitbc gateway`)."""
    settings = settings or GatewaySettings(limits=GatewayLimits(max_body_bytes=max_body_bytes))
    await uvicorn.Server(_config(coordinator_target, listen, settings, log_level="info")).serve()


def _config(coordinator_target: str, listen: str, settings: GatewaySettings, *, log_level: str) -> uvicorn.Config:
    host, port = split_address(listen)
    limits = settings.limits
    app = create_app(
        coordinator_target,
        limits,
        settings.options,
        tls=settings.coordinator_tls,
        ready_min_miners=settings.ready_min_miners,
        metrics=settings.metrics,
    )
    logging.getLogger("gateway.access").setLevel(logging.INFO if settings.access_log else logging.WARNING)
    extra: dict[str, Any] = {}
    if settings.log_format == "json":
        # uvicorn's own handlers write text; without them its lines reach the root logger's JSON handler.
        extra["log_config"] = None
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        # uvicorn refuses a bigger WebSocket message itself (close 1009) before
        # buffering it; the app checks again for servers that do not.
        ws_max_size=limits.max_body_bytes,
        # The app logs each request itself, with its request id and route template.
        access_log=False,
        ssl_certfile=settings.https_cert,
        ssl_keyfile=settings.https_key,
        **extra,
    )


class _SignalFreeServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers, for a process that handles them itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedGateway:
    """The gateway as one part of a bigger process (`aitbc up`): started and stopped by its owner."""

    def __init__(
        self,
        coordinator_target: str,
        listen: str,
        limits: GatewayLimits | None = None,
        *,
        settings: GatewaySettings | None = None,
    ) -> None:
        self.listen = listen
        # The terminal of `aitbc up` shows the stack's own lines, not a line per request (unless logs are JSON).
        settings = settings or GatewaySettings(limits=limits or GatewayLimits(), access_log=False)
        config = _config(coordinator_target, listen, settings, log_level="warning")
        self._server = _SignalFreeServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Return once the gateway listens; OSError if it cannot."""
        # Bound here rather than by uvicorn, which exits the whole process when it cannot bind.
        host, port = split_address(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            listener.close()
            raise OSError(f"the HTTP gateway cannot listen on {self.listen}: {exc.strerror}") from exc
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="gateway")
        # uvicorn has no start-up event to await; it sets `started` once serving.
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the HTTP gateway stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
