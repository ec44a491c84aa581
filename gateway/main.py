"""Running the gateway: `serve_gateway` for `aitbc gateway` and `aitbc up`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from aitbc import config
from gateway.app import create_app
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


def options_from_arguments(ns: argparse.Namespace) -> GatewayOptions:
    """The GatewayOptions the flags of `add_gateway_arguments` ask for."""
    return GatewayOptions(
        cors_origins=tuple(getattr(ns, "cors_origin", None) or ()),
        openai_queue=bool(getattr(ns, "openai_queue", False)),
        wei_per_credit=getattr(ns, "wei_per_credit", None),
    )


async def serve_gateway(
    coordinator_target: str,
    listen: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    options: GatewayOptions | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (`aitbc gateway`)."""
    limits = GatewayLimits(max_body_bytes=max_body_bytes)
    await uvicorn.Server(_config(coordinator_target, listen, limits, log_level="info", options=options)).serve()


def _config(
    coordinator_target: str,
    listen: str,
    limits: GatewayLimits,
    *,
    log_level: str,
    options: GatewayOptions | None = None,
) -> uvicorn.Config:
    host, port = split_address(listen)
    return uvicorn.Config(
        create_app(coordinator_target, limits, options),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        # uvicorn refuses a bigger WebSocket message itself (close 1009) before
        # buffering it; the app checks again for servers that do not.
        ws_max_size=limits.max_body_bytes,
    )


class _SignalFreeServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers, for a process that handles them itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedGateway:
    """The gateway as one part of a bigger process (`aitbc up`): started and stopped by its owner."""

    def __init__(self, coordinator_target: str, listen: str, limits: GatewayLimits | None = None) -> None:
        self.listen = listen
        config = _config(coordinator_target, listen, limits or GatewayLimits(), log_level="warning")
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
