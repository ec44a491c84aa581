"""Bounds on what one client can make the gateway hold: request bodies, WebSocket messages and queues.

A body is read only after the request has shown an API key (see
`gateway.rpc.require_api_key`), and then only up to `max_body_bytes`: a
declared `Content-Length` over the limit is refused before a byte is read,
and a chunked body is counted as it arrives and refused the moment it passes
the limit. Either way the answer is 413 `PAYLOAD_TOO_LARGE`.

The default, 8 MiB, is sized from both ends. The largest request the
coordinator accepts is a job of 200,000 prompt characters (MAX_PROMPT_CHARS);
as JSON that is at most 2.4 MB (an astral character escaped as a surrogate
pair is 12 bytes), so no valid request comes near the limit. And for each
request the gateway routes, the protobuf is smaller than its JSON (at worst
about two thirds of it, for a miner's list of prices), so whatever passes
the limit fits the coordinator's 16 MiB gRPC receive limit with room to
spare: the gateway's 413, not a gRPC error, is what a client sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import payload_too_large

DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
# Frames queued for one WebSocket before producers wait for its reader.
DEFAULT_SEND_QUEUE_FRAMES: Final = 256
# How long producers wait for room before the reader is declared too slow.
DEFAULT_SEND_STALL_SECONDS: Final = 10.0
# Idle streams (SSE, NDJSON, WebSocket) send a keepalive after this many seconds without a message,
# inside the 30-60 s idle timeouts of common proxies and client read timeouts.
DEFAULT_KEEPALIVE_SECONDS: Final = 15.0

_CLOSE: Final = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class GatewayLimits:
    # A request body, and a WebSocket message, is at most this many bytes.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ws_send_queue_frames: int = DEFAULT_SEND_QUEUE_FRAMES
    ws_send_stall_seconds: float = DEFAULT_SEND_STALL_SECONDS
    # Seconds of silence after which a stream sends a keepalive (tests make it short).
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS

    def __post_init__(self) -> None:
        if (
            self.max_body_bytes < 1
            or self.ws_send_queue_frames < 1
            or self.ws_send_stall_seconds <= 0
            or self.keepalive_seconds <= 0
        ):
            raise ValueError(f"limits must be positive: {self}")


def declared_length(headers: Headers) -> int | None:
    """The request's Content-Length; None when it has none (chunked, or no body)."""
    value = headers.get("content-length")
    if value is None:
        return None
    # uvicorn has validated it. Past 18 digits it is over any limit, and int()
    # of thousands of digits is slow; anything unparseable counts as over, too.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 10**18


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed `max_bytes`; never holds more than that."""
    declared = declared_length(request.headers)
    if declared is not None and declared > max_bytes:
        raise payload_too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise payload_too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


class HangUpOnUnreadBodies:
    """ASGI middleware: hang up after answering a request whose large body was left unread.

    An answer sent before the body was read (the 401 for a keyless upload,
    a 413) leaves the rest of the body on the wire, and uvicorn reads and
    discards it to keep the connection. That costs no memory, and it lets
    clients that write their whole body before reading the response (httpx,
    requests, the openai package) see the answer rather than a reset
    connection; so up to `drain_bytes` of unread body is let through. Past
    that, or when the length is unknown (chunked), the response says
    `Connection: close` and uvicorn closes the connection instead of
    reading, say, 100 MB to throw it away. Clients that send `Expect:
    100-continue` (curl, for large bodies) never send the body at all.
    """

    def __init__(self, app: ASGIApp, drain_bytes: int) -> None:
        self.app = app
        self._drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = declared_length(headers)
        # HTTP/1.1: a request has a body when it declares a length or is chunked.
        chunked = declared is None and "transfer-encoding" in headers
        received = 0
        complete = declared in (None, 0) and not chunked

        async def counting_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = complete or not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                complete = True
            return message

        async def hanging_up_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                unread = None if declared is None else declared - received
                if unread is None or unread > self._drain_bytes:
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        await self.app(scope, counting_receive, hanging_up_send)
