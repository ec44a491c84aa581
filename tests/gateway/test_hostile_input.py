"""Inputs that fuzzing turned into 500s (or a misleading 429): each is a 4xx naming the problem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import aitbc.v1
from aitbc.api_descriptors import api_files
from gateway.routes import RouteTable
from tests.conftest import Keys
from tests.gateway.test_rest import SEED_SUBMIT
from tests.gateway.test_websocket import closed_with, receive, send, socket

OPENAI_PATHS = ["/v1/completions", "/v1/chat/completions"]


def _post_paths() -> list[str]:
    """Every annotated route that reads a body, its path variables filled in, and the OpenAI routes."""
    table = RouteTable.from_files(api_files(aitbc.v1))
    paths = [
        route.template.openapi_path().replace("{job_id}", "job_x").replace("{miner_id}", "m_x")
        for route in table.routes
        if route.body
    ]
    assert "/v1/jobs" in paths
    return [*paths, *OPENAI_PATHS]


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def error_of(response: httpx.Response, path: str) -> tuple[str, str]:
    """(error_code, message) in either error shape: OpenAI's on its routes, the gateway's elsewhere."""
    body: dict[str, Any] = response.json()
    if path in OPENAI_PATHS:
        error = body["error"]
        assert error["type"] == ("authentication_error" if response.status_code == 401 else "invalid_request_error")
        return str(error["code"]).upper(), str(error["message"])
    return str(body["error_code"]), str(body["detail"])


@pytest.mark.parametrize("path", _post_paths())
async def test_deeply_nested_json_is_400(http: httpx.AsyncClient, path: str) -> None:
    # Past the interpreter's recursion limit, far past it, and just past the gateway's own limit.
    for depth in (1000, 100_000, 33):
        response = await http.post(path, content=nested(depth))
        assert response.status_code == 400, response.text
        error_code, message = error_of(response, path)
        assert error_code == "INVALID_ARGUMENT"
        assert "nested deeper than 32 levels" in message


@pytest.mark.parametrize("path", _post_paths())
async def test_an_integer_of_thousands_of_digits_is_400(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path, content=b'{"model": ' + b"7" * 5000 + b"}")
    assert response.status_code == 400, response.text
    error_code, message = error_of(response, path)
    assert (error_code, "not valid JSON" in message) == ("INVALID_ARGUMENT", True)


@pytest.mark.parametrize("path", ["/v1/jobs", *OPENAI_PATHS])
async def test_a_lone_surrogate_is_400(http: httpx.AsyncClient, path: str) -> None:
    valid = b'"model": "m", "prompt": "p", "messages": [{"role": "user", "content": "c"}]'
    bodies = [
        b"{" + valid + b', "colour": "\\ud800"}',  # in an unknown parameter's value: in the error message
        b"{" + valid + b', "\\udfff": 1}',  # as an unknown parameter's name: the error's field
        b'{"model": "m", "prompt": "\\ud800", "messages": [{"role": "user", "content": "\\ud800"}]}',
    ]
    for body in bodies:
        response = await http.post(path, content=body)
        assert response.status_code == 400, response.text
        error_code, message = error_of(response, path)
        assert error_code == "INVALID_ARGUMENT"
        assert "unpaired surrogate" in message


@pytest.mark.parametrize("path", ["/v1/jobs", *OPENAI_PATHS])
async def test_a_key_that_cannot_be_a_key_is_401(gateway: str, path: str) -> None:
    keys = [
        "ключ".encode(),  # not ASCII: gRPC cannot send it as metadata
        b"aitbc_client_\x7f",  # ASCII, but not printable
        b"k" * 20_000,  # past gRPC's metadata limit, which would be a 429
        b"k" * 513,
    ]
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as client:
        for key in keys:
            as_header = await client.post(path, json=SEED_SUBMIT, headers={b"X-Api-Key": key})
            as_bearer = await client.post(path, json=SEED_SUBMIT, headers={b"Authorization": b"Bearer " + key})
            for response in (as_header, as_bearer):
                assert response.status_code == 401, response.text
                error_code, message = error_of(response, path)
                assert (error_code, message) == (
                    "UNAUTHENTICATED",
                    "the API key is not valid: a key is printable ASCII, at most 512 long",
                )


async def test_a_key_of_the_longest_length_reaches_the_coordinator(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": "k" * 512}) as client:
        response = await client.get("/v1/jobs")
    assert (response.status_code, response.json()["detail"]) == (401, "the API key is not valid (unknown or revoked)")


async def test_a_last_event_id_that_is_not_a_sequence_number_is_400(http: httpx.AsyncClient) -> None:
    for last_event_id in ("\u00b2".encode("latin-1"), b"9" * 5000, b"-1"):
        response = await http.get("/v1/jobs/job_x/stream", headers={b"Last-Event-ID": last_event_id})
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "from_seq"


async def test_a_websocket_key_that_cannot_be_a_key_closes_with_4401(gateway: str) -> None:
    async with socket(gateway) as connection:
        await send(connection, {"type": "auth", "api_key": "k" * 20_000})
        error = await receive(connection)
        assert (error["error_code"], error["detail"]) == (
            "UNAUTHENTICATED",
            "the API key is not valid: a key is printable ASCII, at most 512 long",
        )
        assert await closed_with(connection) == (4401, "UNAUTHENTICATED")


@pytest.mark.parametrize("from_seq", ["%C2%B2", "9" * 5000, "9" * 19])
async def test_a_websocket_from_seq_that_is_not_a_sequence_number_closes_with_4400(
    gateway: str, keys: Keys, from_seq: str
) -> None:
    async with socket(gateway, f"/v1/jobs/job_x/ws?from_seq={from_seq}", keys.client) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        error = await receive(connection)
        assert (error["error_code"], error["field"]) == ("INVALID_ARGUMENT", "from_seq")
        assert (await closed_with(connection))[0] == 4400


async def test_hostile_websocket_frames_get_errors_and_the_socket_stays_open(gateway: str, keys: Keys) -> None:
    async with socket(gateway, api_key=keys.client) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        await connection.send('{"type": "subscribe", "job_id": "\\ud800", "id": 1}')
        assert "unpaired surrogate" in (await receive(connection))["detail"]
        await connection.send(nested(1000).decode())
        assert "nested deeper than 32 levels" in (await receive(connection))["detail"]
        await send(connection, {"type": "subscribe", "job_id": "job_x", "from_seq": 2**63, "id": 2})
        assert (await receive(connection))["field"] == "from_seq"
        await send(connection, {"type": "subscribe", "job_id": "job_x", "id": 3})
        assert (await receive(connection))["error_code"] == "JOB_NOT_FOUND"
