"""The seed's history, export, stats, cancel and webhook commands against the real coordinator, over gRPC and
through the gateway."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aitbc.cli import main
from aitbc.client import AitbcApiError, AsyncClient, JobStatus, StatusCode
from aitbc.coordinator.engine import CoordinatorConfig
from tests.conftest import TEST_CATALOG, Keys
from tests.gateway.conftest import running_gateway
from tests.support.webhook_receiver import webhook_receiver

from .cli_runner import run_cli

PROMPTS = ['a "quoted", comma', "two\nlines", "plain"]


@pytest.fixture
def coordinator_config() -> CoordinatorConfig:
    return CoordinatorConfig(cancel_ack_timeout=5.0, catalog=TEST_CATALOG, allow_private_webhooks=True)


@pytest.fixture
async def connection(target: str, keys: Keys, transport: str) -> AsyncIterator[tuple[str, ...]]:
    """`--coordinator` and `--api-key` for the coordinator, or for the gateway in front of it."""
    async with AsyncExitStack() as stack:
        address = target
        if transport == "http":
            address = f"http://{await stack.enter_async_context(running_gateway(target))}"
        yield ("--coordinator", address, "--api-key", keys.client)


async def cli(*args: str) -> int:
    # The blocking client runs in a worker thread so the coordinator keeps serving on this loop.
    return await asyncio.to_thread(run_cli, *args)


async def submitted(connection: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> list[str]:
    ids = []
    for prompt in PROMPTS:
        assert await cli("submit", prompt, "--model", "tiny", "--queue", *connection) == 0
        ids.append(capsys.readouterr().out.strip())
    return ids


async def test_export_list_and_stats(
    connection: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await submitted(connection, capsys)
    assert await cli("client", "cancel", "--job-id", ids[0], *connection) == 0  # not a terminal: no question
    csv_file = tmp_path / "jobs.csv"
    assert await cli("client", "export", "--format", "csv", "--output", str(csv_file), *connection) == 0
    with csv_file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job_id"], row["prompt"]) for row in rows] == list(zip(ids, PROMPTS, strict=True))[::-1]
    json_file = tmp_path / "jobs.json"
    assert (
        await cli("client", "export", "--format", "json", "-o", str(json_file), "--status", "pending", *connection) == 0
    )
    assert [job["prompt"] for job in json.loads(json_file.read_text())] == PROMPTS[:0:-1]
    left = await asyncio.to_thread(lambda: sorted(path.name for path in tmp_path.glob("*jobs*")))
    assert left == ["jobs.csv", "jobs.json"], "temporary files left behind"

    today = datetime.now(UTC).date()
    capsys.readouterr()
    assert await cli("client", "list", "--from", str(today), "--to", str(today), "--json", *connection) == 0
    assert [job["job_id"] for job in json.loads(capsys.readouterr().out)] == ids[::-1]
    yesterday = str(today - timedelta(days=1))
    assert await cli("list", "--to", yesterday, "--json", *connection) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert await cli("client", "list", "--days", "7", "--status", "canceled", "--json", *connection) == 0
    assert [job["job_id"] for job in json.loads(capsys.readouterr().out)] == [ids[0]]

    assert await cli("client", "stats", "--json", *connection) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["total_jobs"], stats["counts"]["pending"], stats["counts"]["canceled"]) == (3, 2, 1)
    assert await cli("stats", *connection) == 0
    text = capsys.readouterr().out
    assert "Total jobs" in text
    assert "0.0% of 1 finished" in text


async def test_cancel_asks_on_a_terminal(
    connection: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = await submitted(connection, capsys)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda question: next(answers))
    assert await cli("client", "cancel", "--job-id", first, *connection) == 1
    assert "not canceled" in capsys.readouterr().err
    assert await cli("client", "cancel", "--job-id", first, *connection) == 0
    assert f"{first}: canceled" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda question: pytest.fail("--force must not ask"))
    assert await cli("client", "cancel", "--job-id", second, "--force", *connection) == 0
    assert await cli("cancel", third, "-f", *connection) == 0


async def test_bad_dates_are_refused_by_the_cli(
    connection: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        await cli("client", "list", "--from", "2026-02-30", *connection)
    assert "--from" in capsys.readouterr().err
    assert await cli("client", "list", "--from", "2026-02-01", "--to", "2026-01-01", *connection) != 0
    assert "created_before" in capsys.readouterr().err


async def test_webhook_commands(connection: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    async with webhook_receiver() as receiver:
        assert await asyncio.to_thread(main, ["webhooks", "create", receiver.url, "--json", *connection]) == 0
        created = json.loads(capsys.readouterr().out)
        assert created["events"] == ["job.completed", "job.failed", "job.canceled"]
        assert created["secret"].startswith("whsec_")
        hook = created["webhook_id"]
        assert await asyncio.to_thread(main, ["webhooks", "test", hook, *connection]) == 0
        await receiver.wait_for(1)
        assert await asyncio.to_thread(main, ["webhooks", "list", *connection]) == 0
        assert hook in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["webhooks", "get", hook, *connection]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert "secret" not in shown
        assert shown["recent_deliveries"][0]["event"] == "webhook.test"
        assert await asyncio.to_thread(main, ["webhooks", "delete", hook, *connection]) == 0
        assert await asyncio.to_thread(main, ["webhooks", "get", hook, *connection]) != 0
        assert "WEBHOOK_NOT_FOUND" in capsys.readouterr().err or "not found" in capsys.readouterr().err


async def test_async_sdk_history(target: str, keys: Keys, transport: str) -> None:
    async with AsyncExitStack() as stack:
        address = target
        if transport == "http":
            address = f"http://{await stack.enter_async_context(running_gateway(target))}/api"
        client = await stack.enter_async_context(AsyncClient(address, keys.client, timeout=10))
        job = await client.submit_job('say "hi", twice', "tiny", queue_if_unavailable=True)
        canceled = await client.cancel_job(job.job_id)
        assert canceled.status is JobStatus.CANCELLED
        document = b"".join([chunk async for chunk in client.export_jobs("csv")])
        [row] = csv.DictReader(document.decode().splitlines())
        assert (row["job_id"], row["prompt"], row["status"]) == (job.job_id, 'say "hi", twice', "canceled")
        now = datetime.now(UTC)
        assert (await client.job_stats(created_after=now - timedelta(minutes=5)))["counts"]["canceled"] == 1
        assert not (await client.list_jobs(created_after=now + timedelta(minutes=5))).jobs
        with pytest.raises(AitbcApiError) as refused:
            await client.list_jobs(created_after=now, created_before=now - timedelta(days=1))
        assert (refused.value.code, refused.value.field) == (StatusCode.INVALID_ARGUMENT, "created_before")
        async with webhook_receiver() as receiver:
            webhook = await client.create_webhook(receiver.url, ["job.failed"])
            assert [hook["webhook_id"] for hook in await client.list_webhooks()] == [webhook["webhook_id"]]
            await client.delete_webhook(webhook["webhook_id"])


def test_sdk_statuses_read_the_seeds_british_spelling() -> None:
    canceled = JobStatus("canceled")
    assert canceled in ("completed", "failed", "cancelled")  # the seed's poll loop ends
    assert canceled == "canceled"
    assert canceled == "cancelled"
    assert canceled is JobStatus.CANCELLED
    assert JobStatus("cancelled") is JobStatus.CANCELED
    assert JobStatus.CANCELING == "cancelling"
    assert JobStatus.COMPLETED != "cancelled"
    assert not JobStatus.CANCELING.is_final
