"""Job events over WebSocket: many jobs on one socket (`/v1/jobs/ws`) or one (`/v1/jobs/{job_id}/ws`).

Frames are JSON text. docs/gateway.md has the protocol with examples; in short:

Once authenticated, a many-jobs socket receives an `update` for every change
to its account's jobs (WatchAccountJobs: state changes, and progress at most
four times a second per job) without asking; subscriptions add a job's full
event stream, tokens included.

client → gateway (`id` is optional and echoed in the reply):
    {"type": "auth", "api_key": KEY}           first frame, unless a header carried the key
    {"type": "subscribe", "job_id": ID, "from_seq": N}
    {"type": "unsubscribe", "job_id": ID}
    {"type": "submit", "job": {SubmitJob JSON}, "subscribe": true}
    {"type": "cancel", "job_id": ID}

gateway → client:
    {"type": "authenticated"}                   the account's updates flow from here on
    {"type": "update", "job_id": ID, "event": {WatchJob JSON}}      a state change
    {"type": "update", "job_id": ID, "progress": {JobProgress JSON}}
    {"type": "subscribed", "job_id": ID}        then its events, in order
    {"type": "event", "job_id": ID, "event": {WatchJob JSON}}
    {"type": "unsubscribed", "job_id": ID}
    {"type": "submitted", "job": {Job JSON}}
    {"type": "canceled", "job": {Job JSON}}
    {"type": "error", "detail": ..., "error_code": ..., "field"?: ..., "job_id"?: ID}
    {"type": "keepalive"}                       after 15 s without another frame; ignore it

A subscription ends by itself after its job's final event. Closing the
socket cancels no job. Close codes: 4000 + the HTTP status for a refused key
(4401, 4403) or, on a single-job socket, for its job (4404); 1000 once a
single job finished; 1009 for a message over the size limit; 1013 when the
client reads too slowly (or the account's updates fell behind) or the
coordinator is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from typing import Any, Final

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from aitbc.v1 import jobs_pb2
from gateway.errors import GatewayError, invalid_argument, payload_too_large
from gateway.jobs import JobClient
from gateway.limits import GatewayLimits
from gateway.rpc import MessageStream, api_key_from_headers, check_api_key
from gateway.sender import CLOSE_NORMAL, CLOSE_TRY_AGAIN_LATER, BoundedSender, SocketClosed
from gateway.transcoding import message_from_json, message_to_json, parse_json

AUTH_TIMEOUT: Final = 10.0
MAX_SUBSCRIPTIONS: Final = 100
MAX_SEQ: Final = 2**63 - 1

CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011

Frame = dict[str, Any]


def close_code(error: GatewayError) -> int:
    if error.status in (429, 503):
        return CLOSE_TRY_AGAIN_LATER
    if 400 <= error.status < 500:
        return 4000 + error.status
    return CLOSE_INTERNAL_ERROR


def error_frame(error: GatewayError, **context: Any) -> Frame:
    return {"type": "error", **context, **error.body()}


class JobSocket:
    """One WebSocket connection: its key, its subscriptions, its in-flight requests."""

    def __init__(self, websocket: WebSocket, jobs: JobClient, limits: GatewayLimits) -> None:
        self._websocket = websocket
        self._jobs = jobs
        self._max_message_bytes = limits.max_body_bytes
        self._sender = BoundedSender(
            websocket.send_text,
            self._close_websocket,
            max_queued=limits.ws_send_queue_frames,
            stall_timeout=limits.ws_send_stall_seconds,
            keepalive_seconds=limits.keepalive_seconds,
        )
        self._api_key: str | None = None
        self._account: MessageStream[jobs_pb2.WatchAccountJobsResponse] | None = None
        self._subscriptions: dict[str, asyncio.Task[GatewayError | None]] = {}
        self._requests: set[asyncio.Task[None]] = set()

    async def _close_websocket(self, code: int, reason: str) -> None:
        await self._websocket.close(code, reason)

    async def serve(self, job_id: str | None = None, from_seq: object = 0) -> None:
        """Serve the socket until either side closes it; with `job_id`, until that job's events end.

        `from_seq` is where the single job's events start: a number or the query string's digits.
        """
        await self._websocket.accept()
        self._sender.start()
        try:
            if await self._authenticate(follow_account=job_id is None):
                await self._serve_authenticated(job_id, from_seq)
        finally:
            if self._account is not None:
                self._account.cancel()
            for task in (*self._subscriptions.values(), *self._requests):
                task.cancel()
            await asyncio.gather(*self._subscriptions.values(), *self._requests, return_exceptions=True)
            if self._websocket.client_state is WebSocketState.CONNECTED:
                await self._sender.close()
            else:
                await self._sender.abort()

    async def _serve_authenticated(self, job_id: str | None, from_seq: object) -> None:
        single = None
        if job_id is not None:
            try:
                single = self._subscribe(job_id, _from_seq(from_seq), None)
            except GatewayError as error:
                await self._sender.put(error_frame(error, job_id=job_id))
                await self._sender.close(close_code(error), error.error_code)
                return
        waits: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(self._read_frames()),
            asyncio.ensure_future(self._sender.stopped.wait()),
        }
        if single is not None:
            waits.add(single)
        if self._account is not None:
            waits.add(asyncio.ensure_future(self._follow_account(self._account)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if single is not None and single.done() and not single.cancelled():
            # A single-job socket lives as long as its job's events do.
            ended_by = single.result()
            await self._sender.close(CLOSE_NORMAL if ended_by is None else close_code(ended_by), "job finished")

    async def _authenticate(self, *, follow_account: bool) -> bool:
        """Check the key (by opening the account's updates, with `follow_account`); False once refused."""
        request_id = None
        self._api_key = api_key_from_headers(self._websocket.headers)
        if self._api_key is None:
            try:
                frame = await asyncio.wait_for(self._next_frame(), AUTH_TIMEOUT)
            except TimeoutError:
                frame = None
            if frame is None or frame.get("type") != "auth" or not isinstance(frame.get("api_key"), str):
                await self._sender.close(4401, 'send {"type": "auth", "api_key": KEY} first, or an X-Api-Key header')
                return False
            request_id = frame.get("id")
            self._api_key = frame["api_key"]
        try:
            if follow_account:
                self._account = await self._jobs.watch_account(check_api_key(self._api_key))
            else:
                await self._jobs.authenticate(check_api_key(self._api_key))
        except GatewayError as error:
            await self._sender.put(error_frame(error, **_echo(request_id)))
            await self._sender.close(close_code(error), error.error_code)
            return False
        await self._sender.put({"type": "authenticated", **_echo(request_id)})
        return True

    async def _follow_account(self, updates: MessageStream[jobs_pb2.WatchAccountJobsResponse]) -> None:
        """Pass the account's updates on until the socket closes; updates that end close it (1013, 1011)."""
        try:
            async for update in updates:
                if update.WhichOneof("update") != "started":
                    await self._sender.put({"type": "update", **message_to_json(update)})
            raise GatewayError(503, "UNAVAILABLE", "the coordinator ended the account's updates; reconnect")
        except GatewayError as error:
            with contextlib.suppress(SocketClosed):
                await self._sender.put(error_frame(error))
                await self._sender.close(close_code(error), error.error_code)
        except SocketClosed:
            pass

    async def _next_frame(self) -> Frame | None:
        """The next JSON object from the client; None once it disconnected or was disconnected for sending
        a message over the size limit. Bad frames get an error reply."""
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            if _message_size(message) > self._max_message_bytes:
                # uvicorn refuses these itself when its ws_max_size is set as `aitbc gateway` sets it.
                error = payload_too_large(self._max_message_bytes, "message")
                await self._sender.put(error_frame(error))
                await self._sender.close(CLOSE_MESSAGE_TOO_BIG, error.error_code)
                return None
            try:
                frame = parse_json(message.get("text") or "", "frame")
            except GatewayError as error:
                await self._sender.put(error_frame(error))
                continue
            if isinstance(frame, dict):
                return frame
            await self._sender.put(error_frame(invalid_argument("a frame is a JSON object")))

    async def _read_frames(self) -> None:
        with contextlib.suppress(SocketClosed):
            while (frame := await self._next_frame()) is not None:
                await self._dispatch(frame)

    async def _dispatch(self, frame: Frame) -> None:
        request_id = frame.get("id")
        kind = frame.get("type")
        try:
            if kind == "subscribe":
                self._subscribe(_job_id(frame), _from_seq(frame.get("from_seq", 0)), request_id)
            elif kind == "unsubscribe":
                await self._unsubscribe(_job_id(frame), request_id)
            elif kind == "submit":
                self._spawn(self._submit(frame, request_id))
            elif kind == "cancel":
                self._spawn(self._cancel(_job_id(frame), request_id))
            else:
                expected = "subscribe, unsubscribe, submit or cancel"
                raise invalid_argument(f"unknown frame type {kind!r}; expected {expected}", "type")
        except GatewayError as error:
            await self._sender.put(error_frame(error, **_echo(request_id)))

    def _spawn(self, request: Coroutine[Any, Any, None]) -> None:
        async def reply() -> None:
            with contextlib.suppress(SocketClosed):
                await request

        task = asyncio.create_task(reply())
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    def _subscribe(self, job_id: str, from_seq: int, request_id: object) -> asyncio.Task[GatewayError | None]:
        """Follow a job's events, replacing an earlier subscription to the same job."""
        previous = self._subscriptions.pop(job_id, None)
        if previous is not None:
            previous.cancel()
        elif len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            raise GatewayError(429, "TOO_MANY_SUBSCRIPTIONS", f"at most {MAX_SUBSCRIPTIONS} jobs per socket")
        task = asyncio.create_task(self._follow(job_id, from_seq, request_id), name=f"websocket-watch-{job_id}")
        self._subscriptions[job_id] = task

        def forget(done: asyncio.Task[GatewayError | None]) -> None:
            if self._subscriptions.get(job_id) is done:
                del self._subscriptions[job_id]

        task.add_done_callback(forget)
        return task

    async def _follow(self, job_id: str, from_seq: int, request_id: object) -> GatewayError | None:
        """Send the job's events until its final one; the error that ended it early, if any."""
        try:
            stream = await self._jobs.watch(job_id, self._api_key, from_seq)
            await self._sender.put({"type": "subscribed", "job_id": job_id, **_echo(request_id)})
            async for event in stream:
                await self._sender.put({"type": "event", "job_id": job_id, "event": message_to_json(event)})
        except GatewayError as error:
            with contextlib.suppress(SocketClosed):
                await self._sender.put(error_frame(error, job_id=job_id, **_echo(request_id)))
            return error
        except SocketClosed:
            pass
        return None

    async def _unsubscribe(self, job_id: str, request_id: object) -> None:
        task = self._subscriptions.pop(job_id, None)
        if task is None:
            raise GatewayError(404, "NOT_SUBSCRIBED", f"not subscribed to {job_id!r}", field="job_id")
        task.cancel()
        await self._sender.put({"type": "unsubscribed", "job_id": job_id, **_echo(request_id)})

    async def _submit(self, frame: Frame, request_id: object) -> None:
        try:
            request = message_from_json(frame.get("job"), jobs_pb2.SubmitJobRequest)
            job = await self._jobs.submit(request, self._api_key)
            await self._sender.put({"type": "submitted", "job": message_to_json(job), **_echo(request_id)})
            if frame.get("subscribe", True):
                self._subscribe(job.job_id, 0, request_id)
        except GatewayError as error:
            await self._sender.put(error_frame(error, **_echo(request_id)))

    async def _cancel(self, job_id: str, request_id: object) -> None:
        try:
            job = await self._jobs.cancel(job_id, self._api_key)
            await self._sender.put({"type": "canceled", "job": message_to_json(job), **_echo(request_id)})
        except GatewayError as error:
            await self._sender.put(error_frame(error, job_id=job_id, **_echo(request_id)))


def _message_size(message: Mapping[str, Any]) -> int:
    data = message.get("text") or message.get("bytes") or b""
    # The UTF-8 length of a text message; counting characters would let 4-byte characters through.
    return len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())


def _echo(request_id: object) -> Frame:
    return {} if request_id is None else {"id": request_id}


def _job_id(frame: Frame) -> str:
    job_id = frame.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise invalid_argument("job_id is required", "job_id")
    return job_id


def _from_seq(value: object) -> int:
    """A frame's number or a query string's digits, within WatchJobRequest.from_seq's int64."""
    # ASCII only: str.isdigit() is true of "²", which int() refuses; and 19 digits
    # at most, since int() refuses thousands of them.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ:
        return value
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    raise invalid_argument(f"from_seq must be a sequence number (0 to {MAX_SEQ}), got {shown}", "from_seq")


def websocket_routes(jobs: JobClient, limits: GatewayLimits) -> list[WebSocketRoute]:
    async def many_jobs(websocket: WebSocket) -> None:
        await JobSocket(websocket, jobs, limits).serve()

    async def one_job(websocket: WebSocket) -> None:
        from_seq = websocket.query_params.get("from_seq", "0")
        await JobSocket(websocket, jobs, limits).serve(websocket.path_params["job_id"], from_seq)

    return [WebSocketRoute("/v1/jobs/ws", many_jobs), WebSocketRoute("/v1/jobs/{job_id}/ws", one_job)]
