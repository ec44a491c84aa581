"""`serve_gateway` and its command-line arguments."""

from __future__ import annotations

import argparse
import asyncio

import httpx
import pytest

from gateway import add_gateway_arguments
from gateway.limits import GatewayLimits
from gateway.main import EmbeddedGateway, options_from_arguments, split_address
from gateway.options import GatewayOptions
from tests.conftest import Keys
from tests.gateway.test_websocket import closed_with, receive, socket

START_TIMEOUT = 10.0


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)), ("localhost:0", ("localhost", 0))],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["localhost", ":8080", "host:http"])
def test_split_address_rejects_what_is_not_host_and_port(address: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_address(address)


def test_arguments_and_their_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_gateway_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.coordinator, defaults.listen) == (None, "127.0.0.1:8080")
    given = parser.parse_args(["--coordinator", "10.0.0.5:50051", "--listen", "0.0.0.0:9000"])
    assert (given.coordinator, given.listen) == ("10.0.0.5:50051", "0.0.0.0:9000")


async def test_embedded_gateway_starts_serves_and_stops(target: str, unused_tcp_port: int) -> None:
    gateway = EmbeddedGateway(target, f"127.0.0.1:{unused_tcp_port}")
    await asyncio.wait_for(gateway.start(), START_TIMEOUT)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
        health = await client.get("/health")
    assert health.json()["coordinator"] == "serving"
    await asyncio.wait_for(gateway.stop(), START_TIMEOUT)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/health")


async def test_embedded_gateway_reports_a_taken_port(target: str, unused_tcp_port: int) -> None:
    first = EmbeddedGateway(target, f"127.0.0.1:{unused_tcp_port}")
    await first.start()
    try:
        with pytest.raises(OSError, match="cannot listen"):
            await EmbeddedGateway(target, f"127.0.0.1:{unused_tcp_port}").start()
    finally:
        await first.stop()


def test_the_options_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_gateway_arguments(parser)
    assert options_from_arguments(parser.parse_args([])) == GatewayOptions()
    ns = parser.parse_args(
        ["--cors-origin", "https://a.example", "--cors-origin", "*", "--openai-queue", "--wei-per-credit", "5"]
    )
    assert options_from_arguments(ns) == GatewayOptions(
        cors_origins=("https://a.example", "*"), openai_queue=True, wei_per_credit=5
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--wei-per-credit", "-1"])


def test_max_body_bytes_argument() -> None:
    parser = argparse.ArgumentParser()
    add_gateway_arguments(parser)
    assert parser.parse_args([]).max_body_bytes == 8 * 1024 * 1024
    assert parser.parse_args(["--max-body-bytes", "1024"]).max_body_bytes == 1024
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-body-bytes", "0"])


async def test_uvicorn_refuses_a_websocket_message_over_the_limit(
    target: str, unused_tcp_port: int, keys: Keys
) -> None:
    address = f"127.0.0.1:{unused_tcp_port}"
    gateway = EmbeddedGateway(target, address, GatewayLimits(max_body_bytes=4096))
    await asyncio.wait_for(gateway.start(), START_TIMEOUT)
    try:
        async with socket(address, api_key=keys.client) as connection:
            assert await receive(connection) == {"type": "authenticated"}
            await connection.send("x" * 4097)
            code, reason = await closed_with(connection)
    finally:
        await gateway.stop()
    # uvicorn's own refusal, before the app sees the message (the app's says PAYLOAD_TOO_LARGE).
    assert code == 1009
    assert reason != "PAYLOAD_TOO_LARGE"
