"""The explorer over REST: blocks, transactions, receipts and totals, newest first, amounts as integers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from aitbc.cli import main
from aitbc.services.server import RunningCoordinator
from tests.conftest import STARTING_CREDITS, Keys
from tests.gateway.test_receipts import completed_job
from tests.support.scripted_miner import ScriptedMiner


async def test_the_explorer_shows_blocks_transactions_receipts_and_totals(
    http: httpx.AsyncClient, miner: ScriptedMiner, coordinator: RunningCoordinator
) -> None:
    job = await completed_job(http, miner)
    await coordinator.coordinator._blocks.seal_pending()  # the next tick's work, now

    blocks = (await http.get("/explorer/blocks")).json()["blocks"]
    assert [block["height"] for block in blocks] == [1, 0]
    assert blocks[0]["previous_hash"] == blocks[1]["block_hash"]
    block = (await http.get("/explorer/blocks/1")).json()
    kinds = [tx["kind"] for tx in block["transactions"]]
    assert kinds[-2:] == ["hold", "settle"]
    assert [receipt["receipt_id"] for receipt in block["receipts"]] == [job["receipt_id"]]
    settle = block["transactions"][-1]
    assert all(isinstance(posting["amount"], int) for posting in settle["postings"])
    assert all(posting["account"].startswith("ait1") for posting in settle["postings"])
    missing = await http.get("/explorer/blocks/7")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "BLOCK_NOT_FOUND")

    transactions = (await http.get("/explorer/transactions", params={"limit": 2})).json()["transactions"]
    assert [tx["kind"] for tx in transactions] == ["settle", "hold"]
    receipts = (await http.get("/explorer/receipts")).json()["receipts"]
    assert [receipt["receipt_id"] for receipt in receipts] == [job["receipt_id"]]

    stats = (await http.get("/explorer/stats")).json()
    assert stats == (await http.get("/v1/stats")).json()
    # Two client accounts were credited; one job charged 11 µcr (tests/gateway/test_receipts.py).
    assert (stats["height"], stats["receipts"], stats["minted"], stats["held"], stats["charged"]) == (
        1,
        1,
        2 * STARTING_CREDITS,
        0,
        11,
    )
    bad = await http.get("/explorer/blocks", params={"limit": 1000})
    assert (bad.status_code, bad.json()["field"]) == (400, "limit")


async def test_aitbc_explorer_prints_json(
    http: httpx.AsyncClient, miner: ScriptedMiner, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    await completed_job(http, miner)
    connection = ("--coordinator", target, "--api-key", keys.client)
    assert await asyncio.to_thread(main, ["explorer", "stats", *connection]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["receipts"], stats["charged"]) == (1, 11)
    assert await asyncio.to_thread(main, ["explorer", "block", "0", *connection]) == 0
    assert json.loads(capsys.readouterr().out)["header"]["previous_hash"] == "0" * 64
    assert await asyncio.to_thread(main, ["explorer", "block", "9", *connection]) == 1
    assert "no block at height 9" in capsys.readouterr().err
