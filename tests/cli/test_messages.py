"""Errors in the CLI's words, each with the hint that fits its cause."""

from __future__ import annotations

import pytest

from aitbc.cli.reporting import cli_wording, hint_for
from aitbc.client import AitbcApiError, AsyncClient, StatusCode
from tests.client.fake_coordinator import free_address
from tests.conftest import Keys

from .conftest import Aitbc

CONNECTION_HINT = "no coordinator answered"


async def test_no_eligible_miner_names_the_flag_not_the_api_field(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aitbc("submit", "Nobody serves this now", "--model", "tiny") == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: NO_ELIGIBLE_MINER: no online miner serves tiny",
        "hint: pass --queue to wait for a miner that serves it; `aitbc models` shows what online miners serve",
    ]


async def test_the_api_still_names_its_field(target: str, keys: Keys) -> None:
    async with AsyncClient(target, keys.client) as client:
        with pytest.raises(AitbcApiError) as refused:
            await client.submit_job("Nobody serves this now", "tiny")
    error = refused.value
    assert (error.code, error.reason) == (StatusCode.UNAVAILABLE, "NO_ELIGIBLE_MINER")
    assert error.detail == "no online miner serves tiny; set queue_if_unavailable to wait for one"
    assert (error.advice, error.problem) == ("set queue_if_unavailable to wait for one", "no online miner serves tiny")


async def test_a_full_queue_says_when_to_retry(aitbc: Aitbc, capsys: pytest.CaptureFixture[str]) -> None:
    # The test coordinator queues two jobs per client.
    for _ in range(2):
        assert await aitbc("submit", "wait", "--model", "tiny", "--queue") == 0
    capsys.readouterr()
    assert await aitbc("submit", "one too many", "--model", "tiny", "--queue") == 1
    error, hint = capsys.readouterr().err.splitlines()
    assert error.startswith("error: QUEUE_FULL: ")
    assert hint.startswith("hint: the coordinator's queue is full; try again in ")
    assert CONNECTION_HINT not in hint


async def test_invalid_values_name_the_option(aitbc: Aitbc, capsys: pytest.CaptureFixture[str]) -> None:
    assert await aitbc("submit", "hi", "--model", "tiny", "--queue", "--max-tokens", "0") == 1
    assert capsys.readouterr().err == "error: INVALID_ARGUMENT: --max-tokens: must be between 1 and 8192, got 0\n"
    assert await aitbc("submit", "hi", "--model", "tiny", "--queue", "--temperature", "3") == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: --temperature: must be between 0.0 and 2.0")


async def test_only_a_failed_connection_gets_the_connection_hint(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    address = free_address()
    assert await aitbc("status", "job_1", "--coordinator", address) == 1
    assert f"hint: {CONNECTION_HINT} at {address}" in capsys.readouterr().err


def test_shutting_down_has_its_own_hint() -> None:
    stopping = AitbcApiError(StatusCode.UNAVAILABLE, "SHUTTING_DOWN", "the coordinator is shutting down")
    assert hint_for(stopping, "127.0.0.1:50051") == (
        "the coordinator at 127.0.0.1:50051 is stopping; run the command again once it is back"
    )


def test_api_field_names_in_messages_become_options() -> None:
    pricey = AitbcApiError(
        StatusCode.UNAVAILABLE,
        "NO_ELIGIBLE_MINER",
        "the cheapest route costs 0.42, over max_price 0.1; set queue_if_unavailable to wait for one",
        field="model",
        advice="set queue_if_unavailable to wait for one",
    )
    assert cli_wording(pricey) == "the cheapest route costs 0.42, over --max-price 0.1"
    reused = AitbcApiError(
        StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "idempotency_key: was already used", field="idempotency_key"
    )
    assert cli_wording(reused) == "--idempotency-key: was already used"


def test_queue_help_names_the_reason_the_readme_names(capsys: pytest.CaptureFixture[str]) -> None:
    from aitbc.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["submit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--queue wait in the queue when no online miner can run the job now" in help_text
    assert "(default: fail with NO_ELIGIBLE_MINER)" in help_text
    assert "UNAVAILABLE" not in help_text
