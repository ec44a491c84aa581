"""`aitbc balance` and `aitbc accounts credit` against the real coordinator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aitbc.cli import main
from aitbc.cli.account_commands import STARTING_BALANCE, grant_starting_balance
from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.domain.money import MICRO_PER_CREDIT
from aitbc.store.sqlite import SqliteStore
from tests.conftest import STARTING_CREDITS, Keys


def run(*args: str) -> int:
    return main(list(args))


async def test_balance_and_an_admin_credit(target: str, keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    as_client = ("--coordinator", target, "--api-key", keys.client)
    assert await asyncio.to_thread(run, "balance", "--json", *as_client) == 0
    account = json.loads(capsys.readouterr().out)
    assert (account["balance"], account["held"]) == (STARTING_CREDITS, 0)
    as_admin = ("--coordinator", target, "--api-key", keys.admin)
    assert await asyncio.to_thread(run, "accounts", "credit", account["account"], "12.5", *as_admin) == 0
    assert f"available  {(STARTING_CREDITS + 12_500_000) // MICRO_PER_CREDIT}.5 credits" in capsys.readouterr().out
    assert await asyncio.to_thread(run, "balance", *as_client) == 0
    table = capsys.readouterr().out
    assert f"address    {account['address']}" in table
    assert "held       0 credits" in table


async def test_credit_needs_an_admin_key_and_a_valid_amount(
    target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    as_client = ("--coordinator", target, "--api-key", keys.client)
    assert await asyncio.to_thread(run, "accounts", "credit", "someone", "1", *as_client) == 1
    assert "admin key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("accounts", "credit", "someone", "0.0000001", *as_client)
    assert "at most 6 decimals" in capsys.readouterr().err


async def test_aitbc_up_gives_its_client_key_a_starting_balance_once(tmp_path: Path) -> None:
    database = tmp_path / "aitbc.db"
    store = await SqliteStore.open(database)
    raw, principal = await create_api_key(store, Role.CLIENT, datetime.now(UTC))
    await store.close()
    for _ in range(2):  # every `aitbc up` grants it; only the first adds anything
        await grant_starting_balance(database, raw)
    store = await SqliteStore.open(database)
    try:
        assert (await store.account(principal.owner_id)).available == STARTING_BALANCE
    finally:
        await store.close()
