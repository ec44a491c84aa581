"""Server-streaming RPCs over HTTP, and responses that notice a client going away.

A streaming route answers Server-Sent Events when the client accepts
`text/event-stream`, else newline-delimited JSON. Each event is the JSON of
one response message. Streams resume by convention: when the response has a
`seq` field and the request a `from_seq` field, each SSE event's `id` is the
`seq`, and a `Last-Event-ID: N` header asks for `from_seq = N + 1`.

An error after the stream started can only be reported in-band: SSE sends an
`error` event, NDJSON a `{"error": {...}}` line, both with the usual
`{"detail", "error_code"}` body plus `status`, the HTTP status the error
would have had.

Streams end well: SSE opens with a `retry:` hint and closes a stream that
ran its course with `event: end`, so that a browser's EventSource can stop
instead of reconnecting; a reconnect whose `Last-Event-ID` is at or past the
end gets 204 No Content, which makes every EventSource stop. While nothing
happens (a queued job), SSE sends a comment and NDJSON an empty line every
`keepalive_seconds`, so that proxies and read timeouts keep the stream open.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, Final, TypeVar

from google.protobuf.message import Message
from starlette.datastructures import Headers
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.errors import GatewayError, invalid_argument
from gateway.routes import RestRoute
from gateway.rpc import MessageStream

T = TypeVar("T")

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
SEQUENCE_FIELD = "seq"
RESUME_FIELD = "from_seq"
# Proxies (nginx) buffer responses unless told not to; events must flow as they happen.
STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# How long an EventSource waits before it reconnects after a dropped connection.
SSE_RETRY_MS: Final = 3000
SSE_RETRY: Final = f"retry: {SSE_RETRY_MS}\n\n"
# A comment: every SSE client skips it, and it keeps idle connections alive.
SSE_KEEPALIVE: Final = ": keepalive\n\n"
# An empty line: NDJSON readers skip blank lines (the gateway sends no other kind).
NDJSON_KEEPALIVE: Final = "\n"
END_EVENT: Final = "end"


def encode_json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def sse_event(data: str, *, event: str | None = None, event_id: int | None = None) -> str:
    """One SSE event; `data` must be a single line (compact JSON is)."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


def wants_sse(headers: Headers) -> bool:
    return SSE_MEDIA_TYPE in headers.get("accept", "")


def sequence_of(message: Message) -> int | None:
    if SEQUENCE_FIELD in message.DESCRIPTOR.fields_by_name:
        value: int = getattr(message, SEQUENCE_FIELD)
        return value
    return None


def _is_sequence_number(text: str) -> bool:
    # ASCII only: str.isdigit() is true of "²", which int() refuses. Past 19
    # digits it is no int64, and int() of thousands of digits is refused, too.
    return text.isascii() and text.isdigit() and len(text) <= 19


def resumes(route: RestRoute, headers: Headers) -> bool:
    """Whether the request resumes a stream by `Last-Event-ID`."""
    return "last-event-id" in headers and RESUME_FIELD in route.method.input_type.fields_by_name


def resume_query(route: RestRoute, headers: Headers, query: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The query with `Last-Event-ID` applied: it wins over a `from_seq` already in the URL,
    because an EventSource reconnects to the URL it was given."""
    parameters = list(query)
    if not resumes(route, headers):
        return parameters
    last_event_id = headers["last-event-id"]
    if not _is_sequence_number(last_event_id):
        raise invalid_argument(f"Last-Event-ID must be a sequence number, got {last_event_id[:40]!r}", RESUME_FIELD)
    resumed = []
    for name, value in parameters:
        if name != RESUME_FIELD:
            resumed.append((name, value))
        elif not _is_sequence_number(value):
            # Overridden, but still a request error: the URL is wrong and the client should hear of it.
            raise invalid_argument(f"from_seq must be a sequence number, got {value[:40]!r}", RESUME_FIELD)
    return [*resumed, (RESUME_FIELD, str(int(last_event_id) + 1))]


async def encode_stream(
    messages: AsyncIterable[Message], to_json: Callable[[Message], Any], *, sse: bool
) -> AsyncIterator[str]:
    """SSE events (a `retry:` hint first, `event: end` last) or NDJSON lines; an error ends it in-band."""
    if sse:
        yield SSE_RETRY
    try:
        async for message in messages:
            data = encode_json(to_json(message))
            yield sse_event(data, event_id=sequence_of(message)) if sse else data + "\n"
    except GatewayError as error:
        # The HTTP status the error would have had, since the response's own is 200 by now.
        body = {**error.body(), "status": error.status}
        # No `end` after an error: a stream cut short (503, 504) is worth reconnecting to.
        yield sse_event(encode_json(body), event="error") if sse else encode_json({"error": body}) + "\n"
        return
    if sse:
        # An EventSource dispatches no event without data, hence the empty object.
        yield sse_event("{}", event=END_EVENT)


async def with_keepalive(chunks: AsyncIterator[str], interval: float, keepalive: str) -> AsyncIterator[str]:
    """`chunks`, with `keepalive` sent whenever `interval` seconds pass without one."""
    pending: asyncio.Future[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(chunks))
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield keepalive
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait((pending,))
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


HTTP_BODY = "google.api.HttpBody"


def http_body_response(stream: MessageStream[Any]) -> EventStreamResponse:
    """A stream of `google.api.HttpBody` as one HTTP body, as grpc-gateway serves it: the bytes of every
    message in order, with the first message's content type. Nothing can be said in-band in a document
    that is not JSON lines, so an error after the first chunk ends the response without its last chunk:
    clients see a broken transfer, never a document that merely looks shorter."""
    first = stream.first
    media_type = (first.content_type if first is not None else "") or "application/octet-stream"

    async def chunks() -> AsyncIterator[bytes]:
        async for message in stream:
            if message.data:
                yield message.data

    return EventStreamResponse(chunks(), media_type=media_type)


class Disconnected:
    """What `run_until_disconnect` returns when the client left first."""


DISCONNECTED: Final = Disconnected()


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_until_disconnect(receive: Receive, work: Coroutine[Any, Any, T]) -> T | Disconnected:
    """Run `work` until it finishes or the HTTP client disconnects, whichever comes first.

    The request body must have been read already: what is left to receive is
    the disconnect. Needed because a watch may sit idle for minutes, and only
    a write would otherwise notice that nobody is listening.
    """
    worker = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_client_gone(receive))
    try:
        await asyncio.wait((worker, listener), return_when=asyncio.FIRST_COMPLETED)
        client_left = not worker.done()
    finally:
        listener.cancel()
        worker.cancel()
        # Let both unwind; wait() itself raises only if this task is cancelled.
        await asyncio.wait((listener, worker))
    return DISCONNECTED if client_left else worker.result()


class EventStreamResponse(StreamingResponse):
    """A streaming response that stops streaming, and runs `on_disconnect`, when the client leaves.

    Starlette watches for disconnects only under ASGI versions before 2.4.
    """

    def __init__(
        self,
        content: AsyncIterator[str] | AsyncIterator[bytes],
        *,
        media_type: str,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=STREAM_HEADERS)
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = await run_until_disconnect(receive, self.stream_response(send))
        if isinstance(outcome, Disconnected) and self._on_disconnect is not None:
            await self._on_disconnect()
