"""`serve_gateway` and its command-line arguments."""

from __future__ import annotations

import argparse
import asyncio

import httpx
import pytest

from gateway import add_gateway_arguments
from gateway.main import EmbeddedGateway, split_address

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
