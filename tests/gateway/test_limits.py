"""Request bodies and WebSocket messages are bounded, and the key is checked before a body is read.

The HTTP tests speak HTTP/1.1 over a raw socket (framed by h11): they send a
body's head and stop, which no ordinary client does, to show the gateway
answers without waiting for — or reading — the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import h11
import httpx
import pytest

from gateway.limits import DEFAULT_MAX_BODY_BYTES, GatewayLimits
from tests.conftest import Keys
from tests.gateway.conftest import running_gateway
from tests.gateway.test_rest import SEED_SUBMIT
from tests.gateway.test_websocket import closed_with, receive, send, socket

READ_TIMEOUT = 10.0
SMALL_LIMIT = 4096
# What the attacker declared: far more than the gateway may hold.
HUGE = 100_000_000


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    # Set once the server has closed the connection after answering.
    eof: asyncio.Task[bytes]

    def json(self) -> Any:
        return json.loads(self.body)


async def partial_post(
    address: str, path: str, parts: Sequence[bytes], *, declared: int | None, headers: Sequence[tuple[str, str]] = ()
) -> RawResponse:
    """POST `parts` of a body (declared `declared` bytes long, else chunked) without ending it; the response."""
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    connection = h11.Connection(h11.CLIENT)
    length = [("Content-Length", str(declared))] if declared is not None else [("Transfer-Encoding", "chunked")]
    request = h11.Request(method="POST", target=path, headers=[("Host", address), *length, *headers])
    writer.write(connection.send(request) or b"")
    for part in parts:
        writer.write(connection.send(h11.Data(data=part)) or b"")
    await writer.drain()
    response: h11.Response | None = None
    body = b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await asyncio.wait_for(reader.read(65536), READ_TIMEOUT))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    assert response is not None
    eof = asyncio.create_task(asyncio.wait_for(reader.read(), READ_TIMEOUT))
    eof.add_done_callback(lambda _: writer.close())
    headers_read = {name.decode().lower(): value.decode() for name, value in response.headers}
    return RawResponse(response.status_code, headers_read, body, eof)


async def assert_closed(response: RawResponse) -> None:
    """The gateway hung up after answering instead of draining the unread body."""
    assert response.headers.get("connection") == "close"
    assert await response.eof == b""


@pytest.fixture
async def small_gateway(target: str) -> AsyncIterator[str]:
    async with running_gateway(target, GatewayLimits(max_body_bytes=SMALL_LIMIT)) as address:
        yield address


async def test_a_declared_length_over_the_limit_is_413_before_the_body_arrives(gateway: str, keys: Keys) -> None:
    response = await partial_post(
        gateway, "/v1/jobs", [b"{" * 1024], declared=HUGE, headers=[("X-Api-Key", keys.client)]
    )
    assert response.status == 413
    assert response.json() == {
        "detail": f"request body too large (limit {DEFAULT_MAX_BODY_BYTES} bytes)",
        "error_code": "PAYLOAD_TOO_LARGE",
    }
    await assert_closed(response)


async def test_the_default_limit_is_8_mib(http: httpx.AsyncClient) -> None:
    # A prompt far over the coordinator's own limit, so that getting past the gateway shows as its 400.
    head = b'{"model": "tiny", "prompt": "'
    body = head + b"x" * (8 * 1024 * 1024 - len(head) - 2) + b'"}'
    at_limit = await http.post("/v1/jobs", content=body)
    over = await http.post("/v1/jobs", content=body + b" ")
    assert (at_limit.status_code, at_limit.json()["field"]) == (400, "prompt")
    # httpx sends the whole body before it reads: the gateway let it finish, and it reads the 413.
    assert over.status_code == 413
    assert "connection" not in over.headers


async def test_no_key_and_a_huge_body_is_401_before_the_body_arrives(gateway: str) -> None:
    response = await partial_post(gateway, "/v1/jobs", [b"x" * 1024], declared=HUGE)
    assert response.status == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    await assert_closed(response)


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/chat/completions"])
async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(small_gateway: str, keys: Keys, path: str) -> None:
    # No length declared, and the body never ends: only counting the bytes as they come can stop it.
    parts = [b"[" + b" " * 999] + [b" " * 1000] * 4
    response = await partial_post(small_gateway, path, parts, declared=None, headers=[("X-Api-Key", keys.client)])
    assert response.status == 413
    detail = f"request body too large (limit {SMALL_LIMIT} bytes)"
    if path == "/v1/jobs":
        assert response.json() == {"detail": detail, "error_code": "PAYLOAD_TOO_LARGE"}
    else:
        assert response.json()["error"] == {
            "message": detail,
            "type": "invalid_request_error",
            "param": None,
            "code": "payload_too_large",
        }
    await assert_closed(response)


async def test_a_body_of_exactly_the_limit_is_accepted(small_gateway: str, keys: Keys) -> None:
    body = json.dumps({**SEED_SUBMIT, "queue_if_unavailable": True}).encode()
    async with httpx.AsyncClient(base_url=f"http://{small_gateway}", headers={"X-Api-Key": keys.client}) as client:
        accepted = await client.post("/v1/jobs", content=body.ljust(SMALL_LIMIT))
        refused = await client.post("/v1/jobs", content=body.ljust(SMALL_LIMIT + 1))
    assert accepted.status_code == 201, accepted.text
    assert refused.status_code == 413


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
async def test_openai_routes_want_the_key_before_the_body(gateway: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        response = await anonymous.post(path, json={})
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "unauthenticated")
    assert "API key" in error["message"]


async def test_a_route_without_a_body_answers_and_hangs_up_on_a_huge_one(gateway: str) -> None:
    response = await partial_post(gateway, "/health", [b"x" * 1024], declared=HUGE)
    assert response.status == 405
    await assert_closed(response)


async def test_a_small_unread_body_keeps_the_connection(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        first = await anonymous.post("/v1/jobs", json=SEED_SUBMIT)
        second = await anonymous.post("/v1/jobs", json=SEED_SUBMIT)
    assert (first.status_code, second.status_code) == (401, 401)
    assert "connection" not in first.headers


async def test_a_websocket_message_over_the_limit_closes_with_1009(small_gateway: str, keys: Keys) -> None:
    async with socket(small_gateway, api_key=keys.client) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        await send(connection, {"type": "subscribe", "job_id": "j" * SMALL_LIMIT})
        error = await receive(connection)
        assert error == {
            "type": "error",
            "detail": f"message too large (limit {SMALL_LIMIT} bytes)",
            "error_code": "PAYLOAD_TOO_LARGE",
        }
        assert await closed_with(connection) == (1009, "PAYLOAD_TOO_LARGE")


async def test_a_websocket_auth_frame_over_the_limit_closes_with_1009(small_gateway: str) -> None:
    async with socket(small_gateway) as connection:
        await send(connection, {"type": "auth", "api_key": "k" * SMALL_LIMIT})
        assert (await receive(connection))["error_code"] == "PAYLOAD_TOO_LARGE"
        assert (await closed_with(connection))[0] == 1009
