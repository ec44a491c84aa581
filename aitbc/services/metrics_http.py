"""`GET /metrics` for the coordinator, on a port of its own (`aitbc coordinator --metrics-listen`).

An asyncio server rather than prometheus_client's threaded one: a scrape reads the coordinator's live state
(`Coordinator.load`), which only the event loop's thread may touch. One request per connection, small and
bounded: it serves Prometheus, not browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

MAX_REQUEST_HEAD = 8 * 1024
READ_TIMEOUT = 10.0
METRICS_PATHS = frozenset({"/metrics", "/"})


@dataclass
class MetricsServer:
    server: asyncio.Server
    port: int

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def serve_metrics(registry: CollectorRegistry, listen: str) -> MetricsServer:
    """Serve `registry` on `listen` (HOST:PORT, port 0 for any); OSError if it cannot bind."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--metrics-listen: expected HOST:PORT, got {listen!r}")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path = _request_line(head)
            if method not in ("GET", "HEAD"):
                await _respond(writer, 405, b"method not allowed\n", "text/plain; charset=utf-8")
            elif path not in METRICS_PATHS:
                await _respond(writer, 404, b"not found: try /metrics\n", "text/plain; charset=utf-8")
            else:
                body = generate_latest(registry)
                await _respond(writer, 200, b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST, len(body))
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host.strip("[]"), int(port), limit=MAX_REQUEST_HEAD)
    bound: int = server.sockets[0].getsockname()[1]
    return MetricsServer(server, bound)


def _request_line(head: bytes) -> tuple[str, str]:
    method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return method, path.split("?", 1)[0]


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}


async def _respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str, length: int | None = None
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
