"""The per-socket sender: in order, bounded, and a slow reader gets closed with 1013, not buffered for."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.sender import CLOSE_TRY_AGAIN_LATER, SLOW_READER, BoundedSender, SocketClosed


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[object] = []
        self.closed: list[tuple[int, str]] = []
        # Cleared: the peer stopped reading, so a send never completes.
        self.reading = asyncio.Event()
        self.reading.set()

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


async def test_frames_go_out_in_order_and_close_sends_what_is_queued() -> None:
    peer = FakeSocket()
    sender = BoundedSender(peer.send_text, peer.close, max_queued=8)
    sender.start()
    for n in range(5):
        await sender.put({"n": n})
    await sender.close(1000, "bye")
    assert peer.sent == [{"n": n} for n in range(5)]
    assert peer.closed == [(1000, "bye")]
    assert sender.stopped.is_set()
    with pytest.raises(SocketClosed):
        await sender.put({"n": 5})


async def test_a_reader_that_stops_reading_is_closed_with_1013() -> None:
    peer = FakeSocket()
    peer.reading.clear()
    sender = BoundedSender(peer.send_text, peer.close, max_queued=2, stall_timeout=0.05)
    sender.start()
    # One frame stuck in send, two queued: the bound is reached without waiting.
    for n in range(3):
        await sender.put({"n": n})
    with pytest.raises(SocketClosed):
        await sender.put({"n": 3})
    assert peer.closed == [(CLOSE_TRY_AGAIN_LATER, "client reads too slowly; reconnect and resume from the last seq")]
    assert sender.close_code == CLOSE_TRY_AGAIN_LATER
    assert sender.stopped.is_set()
    assert peer.sent == []
    # Every producer learns at once, and the socket is closed only once.
    with pytest.raises(SocketClosed):
        await sender.put({"n": 4})
    await sender.close()
    assert len(peer.closed) == 1


async def test_a_full_queue_that_drains_in_time_is_not_an_overflow() -> None:
    peer = FakeSocket()
    peer.reading.clear()
    sender = BoundedSender(peer.send_text, peer.close, max_queued=1, stall_timeout=5.0)
    sender.start()
    await sender.put({"n": 0})
    await sender.put({"n": 1})
    blocked = asyncio.create_task(sender.put({"n": 2}))
    await asyncio.wait((blocked,), timeout=0)
    assert not blocked.done()
    peer.reading.set()
    await blocked
    await sender.close()
    assert peer.sent == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert peer.closed == [(1000, "")]


async def test_a_failed_send_stops_the_sender() -> None:
    async def broken(text: str) -> None:
        raise ConnectionResetError

    closed: list[tuple[int, str]] = []

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    sender = BoundedSender(broken, close)
    sender.start()
    await sender.put({"n": 0})
    await asyncio.wait_for(sender.stopped.wait(), 5)
    with pytest.raises(SocketClosed):
        await sender.put({"n": 1})


class StalledPeer(FakeSocket):
    """A peer whose close frame, like any other frame, waits until it reads again."""

    async def close(self, code: int, reason: str) -> None:
        await self.reading.wait()
        await super().close(code, reason)


async def test_a_slow_readers_close_outlives_the_producer_that_started_it() -> None:
    peer = StalledPeer()
    peer.reading.clear()
    sender = BoundedSender(peer.send_text, peer.close, max_queued=1, stall_timeout=0.05)
    sender.start()
    await sender.put({"n": 0})
    await sender.put({"n": 1})
    producer = asyncio.create_task(sender.put({"n": 2}))
    await asyncio.wait_for(sender.stopped.wait(), 5.0)
    # The session ends and cancels its producers while the close waits for the reader.
    producer.cancel()
    await asyncio.wait((producer,))
    assert peer.closed == []
    peer.reading.set()
    await asyncio.wait_for(sender.close(), 5.0)
    assert peer.closed == [(CLOSE_TRY_AGAIN_LATER, SLOW_READER)]


async def test_a_close_waits_for_a_reader_that_never_reads_again_only_so_long() -> None:
    peer = StalledPeer()
    peer.reading.clear()
    sender = BoundedSender(peer.send_text, peer.close, max_queued=1, stall_timeout=0.05, close_timeout=0.05)
    sender.start()
    await sender.put({"n": 0})
    await asyncio.wait_for(sender.close(), 5.0)
    assert (sender.close_code, peer.closed) == (1000, [])
    assert sender.stopped.is_set()
