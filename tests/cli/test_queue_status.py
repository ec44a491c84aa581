"""While a job waits, `submit --stream` and `watch` show its place in the queue and its estimated start."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from aitbc.cli.follow import StatusLine, describe_wait
from aitbc.client import AsyncClient, Job, JobStatus, Routing
from tests.conftest import Keys
from tests.support.scripted_miner import ScriptedMiner

from .conftest import spawn_aitbc

NOW = datetime(2026, 2, 13, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("verb", ["submit", "watch"])
async def test_a_waiting_job_shows_its_place_in_the_queue(
    verb: str, cli_env: dict[str, str], target: str, keys: Keys
) -> None:
    async with AsyncClient(target, keys.client) as client:
        first = await client.submit_job("first in line", "tiny", max_tokens=1, queue_if_unavailable=True)
        args: tuple[str, ...]
        if verb == "submit":
            args = ("submit", "second in line", "--model", "tiny", "--queue", "--stream")
        else:
            second = await client.submit_job("second in line", "tiny", queue_if_unavailable=True)
            args = ("watch", second.job_id)
        async with spawn_aitbc(*args, env=cli_env) as command:
            # No miner serves tiny yet: nothing to estimate a start from.
            await command.read_until("queued: 1 job ahead; start time not known yet", stream="stderr")
            async with ScriptedMiner(target, keys.miner) as miner:
                await miner.hello("m1", ["tiny"], vram_gib=0)
                for job_id, text in ((first.job_id, "one"), (None, "Hello")):
                    assign = (await miner.expect("assign")).assign
                    assert job_id in (None, assign.job_id)
                    await miner.started(assign.job_id, 1)
                    await miner.tokens(assign.job_id, 1, text)
                    await miner.done(assign.job_id, 1, text, completion_tokens=1)
                code, out, err = await command.finish()
    assert (code, out) == (0, "Hello\n")
    assert "error:" not in err


def _pending(position: int, start: datetime | None) -> Job:
    routing = Routing(queue_position=position, estimated_start=start)
    return Job(job_id="job_1", status=JobStatus.PENDING, prompt="p", model="m", routing=routing)


def test_the_wait_in_words() -> None:
    assert describe_wait(_pending(0, None), NOW) == "queued: next in line; start time not known yet"
    assert describe_wait(_pending(1, NOW + timedelta(seconds=12)), NOW) == "queued: 1 job ahead; starts in about 12s"
    assert (
        describe_wait(_pending(3, NOW + timedelta(seconds=75)), NOW) == "queued: 3 jobs ahead; starts in about 1m 15s"
    )
    assert describe_wait(_pending(0, NOW - timedelta(seconds=5)), NOW) == "queued: next in line; starts now"
    running = Job(job_id="job_1", status=JobStatus.RUNNING, prompt="p", model="m")
    assert describe_wait(running, NOW) is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_status_is_rewritten_in_place() -> None:
    terminal = _Terminal()
    line = StatusLine(terminal)
    line.show("queued: 2 jobs ahead")
    line.show("queued: 2 jobs ahead")
    line.show("queued: 1 job ahead")
    line.clear(closing=True)
    line.show("too late")
    assert terminal.getvalue() == "\r\x1b[Kqueued: 2 jobs ahead\r\x1b[Kqueued: 1 job ahead\r\x1b[K"


def test_elsewhere_each_change_is_a_line() -> None:
    log = io.StringIO()
    line = StatusLine(log)
    for text in ("queued: 2 jobs ahead", "queued: 2 jobs ahead", "queued: 1 job ahead"):
        line.show(text)
    line.clear()
    assert log.getvalue() == "queued: 2 jobs ahead\nqueued: 1 job ahead\n"
