"""A WebSocket client that stops reading is closed with 1013 (try again later), not dropped, nor buffered for."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.limits import GatewayLimits
from gateway.sender import SLOW_READER
from tests.conftest import Keys
from tests.gateway.conftest import assigned, running_gateway
from tests.gateway.test_rest import submit
from tests.support.scripted_miner import ScriptedMiner

WAIT_TIMEOUT = 10.0
# 8 MiB of token events: more than the socket buffers between a stalled client and the gateway hold.
TOKEN_TEXT = "x" * 65536
TOKENS = 128


class LogSignal(logging.Handler):
    """Sets `seen` when a record containing `text` is logged: the moment the gateway gives up on the reader."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@contextmanager
def gateway_gives_up() -> Iterator[LogSignal]:
    logger = logging.getLogger("gateway.sender")
    signal = LogSignal("reads too slowly")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(signal)
    try:
        yield signal
    finally:
        logger.removeHandler(signal)
        logger.setLevel(level)


async def read_until_closed(connection: ClientConnection) -> list[dict[str, Any]]:
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(connection.recv(), WAIT_TIMEOUT)))
    except ConnectionClosed:
        return frames


@pytest.fixture
async def impatient_gateway(target: str) -> AsyncIterator[str]:
    """A gateway that gives a stalled reader 0.2 s and queues 4 frames for it."""
    limits = GatewayLimits(ws_send_queue_frames=4, ws_send_stall_seconds=0.2)
    async with running_gateway(target, limits) as address:
        yield address


async def test_a_client_that_stops_reading_is_closed_with_1013(
    impatient_gateway: str, http: httpx.AsyncClient, miner: ScriptedMiner, keys: Keys
) -> None:
    job_id = str((await submit(http))["job_id"])
    await assigned(miner)
    await miner.started(job_id, 1)
    await miner.tokens(job_id, 1, *[TOKEN_TEXT] * TOKENS)

    # A small receive buffer and no compression, so that not reading stalls the gateway soon.
    host, _, port = impatient_gateway.rpartition(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
    with gateway_gives_up() as signal:
        async with connect(
            f"ws://{impatient_gateway}/v1/jobs/{job_id}/ws",
            sock=raw,
            additional_headers={"X-Api-Key": keys.client},
            compression=None,
            max_queue=1,
            proxy=None,
        ) as connection:
            # Read nothing until the gateway has given up on this reader.
            await asyncio.wait_for(signal.seen.wait(), WAIT_TIMEOUT)
            frames = await read_until_closed(connection)
            assert (connection.close_code, connection.close_reason) == (1013, SLOW_READER)

    assert [frame["type"] for frame in frames[:2]] == ["authenticated", "subscribed"]
    # What arrived is a prefix of the job's events, with no gap: resuming from the last seq loses nothing.
    seqs = [frame["event"]["seq"] for frame in frames[2:]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) < TOKENS
