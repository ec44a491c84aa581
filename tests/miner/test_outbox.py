"""The stream's outbound queue: one writer, coalescing while it is behind, order per job, bounded."""

from __future__ import annotations

import asyncio

from aitbc.v1 import miner_pb2
from miner.outbox import Outbox

from .fakes import STEP_TIMEOUT


class StuckStream:
    """A stream whose writes complete only when the test lets them."""

    def __init__(self) -> None:
        self.written: list[miner_pb2.ConnectRequest] = []
        self.half_closed = asyncio.Event()
        self.write_started = asyncio.Event()
        self._writes = asyncio.Semaphore(0)

    def allow(self, writes: int) -> None:
        for _ in range(writes):
            self._writes.release()

    async def write(self, request: miner_pb2.ConnectRequest) -> None:
        self.write_started.set()
        await self._writes.acquire()
        self.written.append(request)

    async def done_writing(self) -> None:
        self.half_closed.set()


def outbox(max_messages: int = 16, max_batch_bytes: int = 1024, draining: list[bool] | None = None) -> Outbox:
    state = draining if draining is not None else [False]
    return Outbox(
        max_messages=max_messages,
        max_batch_bytes=max_batch_bytes,
        heartbeat=lambda: miner_pb2.Heartbeat(draining=state[0]),
    )


def done(job_id: str) -> miner_pb2.ConnectRequest:
    return miner_pb2.ConnectRequest(done=miner_pb2.JobDone(job_id=job_id, attempt=1))


async def write_all(box: Outbox, stream: StuckStream) -> None:
    """Close the outbox and let every write through."""
    stream.allow(1000)
    await box.close()
    await asyncio.wait_for(stream.half_closed.wait(), STEP_TIMEOUT)


async def test_tokens_are_merged_while_the_writer_is_busy() -> None:
    box, stream = outbox(), StuckStream()
    writer = asyncio.create_task(box.write_to(stream))
    await box.send_tokens("job-1", 1, "first ", 1)
    await asyncio.wait_for(stream.write_started.wait(), STEP_TIMEOUT)

    for word in ("a ", "b ", "c "):
        await box.send_tokens("job-1", 1, word, 1)
    await box.send_tokens("job-2", 1, "x ", 2)
    await box.send(done("job-1"))
    await write_all(box, stream)
    await writer

    assert [request.WhichOneof("msg") for request in stream.written] == ["tokens", "tokens", "tokens", "done"]
    first, merged, other = (request.tokens for request in stream.written[:3])
    assert (first.text, first.token_count) == ("first ", 1)
    assert (merged.job_id, merged.text, merged.token_count) == ("job-1", "a b c ", 3)
    assert (other.job_id, other.text, other.token_count) == ("job-2", "x ", 2)


async def test_a_batch_never_grows_past_its_byte_limit() -> None:
    # "é " is 2 characters but 3 bytes: bytes are what the limit counts.
    box, stream = outbox(max_batch_bytes=9), StuckStream()
    writer = asyncio.create_task(box.write_to(stream))
    await box.send(miner_pb2.ConnectRequest(started=miner_pb2.JobStarted(job_id="job-1", attempt=1)))
    await asyncio.wait_for(stream.write_started.wait(), STEP_TIMEOUT)

    for _ in range(5):
        await box.send_tokens("job-1", 1, "é ", 1)
    await write_all(box, stream)
    await writer

    batches = [request.tokens for request in stream.written[1:]]
    assert [(batch.text, batch.token_count) for batch in batches] == [("é é é ", 3), ("é é ", 2)]


async def test_senders_wait_when_the_queue_is_full() -> None:
    box, stream = outbox(max_messages=2), StuckStream()
    writer = asyncio.create_task(box.write_to(stream))
    await box.send(done("job-1"))
    await asyncio.wait_for(stream.write_started.wait(), STEP_TIMEOUT)
    await box.send(done("job-2"))
    await box.send(done("job-3"))

    blocked = asyncio.create_task(box.send(done("job-4")))
    # Let the loop run the sender as far as it can get.
    for _ in range(3):
        await asyncio.sleep(0)
    assert not blocked.done()

    stream.allow(1)
    await asyncio.wait_for(blocked, STEP_TIMEOUT)
    await write_all(box, stream)
    await writer
    assert [request.done.job_id for request in stream.written] == ["job-1", "job-2", "job-3", "job-4"]


async def test_one_heartbeat_waits_at_a_time_and_reports_the_state_when_written() -> None:
    draining = [False]
    box, stream = outbox(draining=draining), StuckStream()
    writer = asyncio.create_task(box.write_to(stream))
    await box.send(done("job-1"))
    await asyncio.wait_for(stream.write_started.wait(), STEP_TIMEOUT)

    await box.send_heartbeat()
    await box.send_heartbeat()
    draining[0] = True
    await write_all(box, stream)
    await writer

    beats = [request.heartbeat for request in stream.written if request.WhichOneof("msg") == "heartbeat"]
    assert [beat.draining for beat in beats] == [True]


async def test_cancelled_send_leaves_nothing_behind() -> None:
    box, stream = outbox(max_messages=1), StuckStream()
    writer = asyncio.create_task(box.write_to(stream))
    await box.send(done("job-0"))
    await asyncio.wait_for(stream.write_started.wait(), STEP_TIMEOUT)
    await box.send(done("job-1"))
    blocked = asyncio.create_task(box.send_tokens("job-2", 1, "lost ", 1))
    await asyncio.sleep(0)

    blocked.cancel()
    await asyncio.wait({blocked})
    # Later text must start a batch of its own, not join the one that never made it into the queue.
    stream.allow(1000)
    await box.send_tokens("job-2", 1, "kept ", 1)
    await write_all(box, stream)
    await writer

    assert [request.WhichOneof("msg") for request in stream.written] == ["done", "done", "tokens"]
    assert stream.written[-1].tokens.text == "kept "
