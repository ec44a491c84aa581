"""The explorer over REST: blocks, transactions, receipts and totals, newest first, amounts as integers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from aitbc.cli import main
from aitbc.services.server import RunningCoordinator
from aitbc.v1 import explorer_pb2, explorer_pb2_grpc, receipts_pb2, receipts_pb2_grpc
from tests.conftest import STARTING_CREDITS, Keys
from tests.gateway.test_receipts import OUTPUT, completed_job
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
async def public(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway with no API key."""
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as client:
        yield client


async def test_the_explorer_shows_blocks_transactions_receipts_and_totals_without_a_key(
    http: httpx.AsyncClient, public: httpx.AsyncClient, miner: ScriptedMiner, coordinator: RunningCoordinator
) -> None:
    job = await completed_job(http, miner)
    await coordinator.coordinator._blocks.seal_pending()  # the next tick's work, now

    blocks = (await public.get("/explorer/blocks")).json()["blocks"]
    assert [block["height"] for block in blocks] == [1, 0]
    assert blocks[0]["previous_hash"] == blocks[1]["block_hash"]
    block = (await public.get("/explorer/blocks/1")).json()
    kinds = [tx["kind"] for tx in block["transactions"]]
    assert kinds[-2:] == ["hold", "settle"]
    assert [receipt["receipt_id"] for receipt in block["receipts"]] == [job["receipt_id"]]
    settle = block["transactions"][-1]
    assert all(isinstance(posting["amount"], int) for posting in settle["postings"])
    assert all(posting["account"].startswith("ait1") for posting in settle["postings"])
    missing = await public.get("/explorer/blocks/7")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "BLOCK_NOT_FOUND")

    transactions = (await public.get("/explorer/transactions", params={"limit": 2})).json()["transactions"]
    assert [tx["kind"] for tx in transactions] == ["settle", "hold"]
    receipts = (await public.get("/explorer/receipts")).json()["receipts"]
    assert [receipt["receipt_id"] for receipt in receipts] == [job["receipt_id"]]
    # Under /api too, and a key sent anyway (even a wrong one) does not matter on a public route.
    wrong_key = {"X-Api-Key": "aitbc_sk_client_not-a-key"}
    assert (await public.get("/api/explorer/receipts", headers=wrong_key)).json()["receipts"] == receipts

    stats = (await public.get("/explorer/stats")).json()
    assert stats == (await public.get("/v1/stats")).json()
    # Two client accounts were credited; one job charged 11 µcr (tests/gateway/test_receipts.py).
    assert (stats["height"], stats["receipts"], stats["minted"], stats["held"], stats["charged"]) == (
        1,
        1,
        2 * STARTING_CREDITS,
        0,
        11,
    )
    assert (stats["jobs_submitted"], stats["jobs_completed"], stats["tokens_served"]) == (1, 1, 3)
    assert (stats["miners_online"], stats["models_served"]) == (1, ["llama-3.2-1b-instruct"])
    assert stats["last_minute"]["jobs_completed"] == stats["last_hour"]["jobs_completed"] == 1
    assert stats["last_hour"]["tokens"] == 3
    bad = await public.get("/explorer/blocks", params={"limit": 1000})
    assert (bad.status_code, bad.json()["field"]) == (400, "limit")
    # The private routes still want a key.
    assert (await public.get("/v1/receipts")).status_code == 401
    assert (await public.get("/v1/jobs")).status_code == 401


async def test_no_prompt_or_output_appears_in_any_public_answer(
    http: httpx.AsyncClient, public: httpx.AsyncClient, miner: ScriptedMiner, coordinator: RunningCoordinator
) -> None:
    job = await completed_job(http, miner)
    await coordinator.coordinator._blocks.seal_pending()
    prompt = (await http.get(f"/v1/jobs/{job['job_id']}")).json()["prompt"]
    paths = [
        "/explorer/blocks",
        "/explorer/blocks/0",
        "/explorer/blocks/1",
        "/explorer/transactions",
        "/explorer/receipts",
        "/explorer/stats",
        "/v1/stats",
        f"/v1/receipts/{job['receipt_id']}",
    ]
    for path in paths:
        response = await public.get(path)
        assert response.status_code == 200, (path, response.text)
        assert prompt not in response.text, path
        assert OUTPUT not in response.text, path


async def test_explorer_lists_page_newest_first_to_the_end(
    http: httpx.AsyncClient, public: httpx.AsyncClient, miner: ScriptedMiner, coordinator: RunningCoordinator
) -> None:
    for _ in range(3):
        await completed_job(http, miner)
        await coordinator.coordinator._blocks.seal_pending()

    async def walk(path: str, key: str, position: str) -> list[Any]:
        seen: list[Any] = []
        token = ""
        while True:
            params: dict[str, str | int] = {"limit": 2, **({"page_token": token} if token else {})}
            page = (await public.get(path, params=params)).json()
            seen += [item[position] for item in page[key]]
            token = page.get("next_page_token", "")
            if not token:
                return seen

    assert await walk("/explorer/blocks", "blocks", "height") == [3, 2, 1, 0]
    everything = (await public.get("/explorer/transactions", params={"limit": 100})).json()["transactions"]
    assert await walk("/explorer/transactions", "transactions", "tx_id") == [tx["tx_id"] for tx in everything]
    assert len(everything) == 2 + 3 * 2  # two credits, then a hold and a settle per job
    receipts = await walk("/explorer/receipts", "receipts", "receipt_id")
    assert len(receipts) == len(set(receipts)) == 3
    bad = await public.get("/explorer/transactions", params={"page_token": "next please"})
    assert (bad.status_code, bad.json()["field"]) == (400, "page_token")


async def test_aitbc_explorer_prints_json(
    http: httpx.AsyncClient, miner: ScriptedMiner, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    await completed_job(http, miner)
    connection = ("--coordinator", target)  # no key: the explorer is public
    assert await asyncio.to_thread(main, ["explorer", "stats", *connection]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["receipts"], stats["charged"]) == (1, 11)
    assert await asyncio.to_thread(main, ["explorer", "block", "0", *connection]) == 0
    assert json.loads(capsys.readouterr().out)["header"]["previous_hash"] == "0" * 64
    assert await asyncio.to_thread(main, ["explorer", "block", "9", *connection]) == 1
    assert "no block at height 9" in capsys.readouterr().err


async def test_grpc_explorer_and_receipt_calls_need_no_key(
    http: httpx.AsyncClient, miner: ScriptedMiner, coordinator: RunningCoordinator, target: str
) -> None:
    job = await completed_job(http, miner)
    await coordinator.coordinator._blocks.seal_pending()
    async with grpc.aio.insecure_channel(target) as channel:
        explorer = explorer_pb2_grpc.ExplorerServiceStub(channel)
        stats = await explorer.GetStats(explorer_pb2.GetStatsRequest())
        assert (stats.jobs_completed, stats.height) == (1, 1)
        receipts = receipts_pb2_grpc.ReceiptServiceStub(channel)
        answer = await receipts.GetReceipt(receipts_pb2.GetReceiptRequest(receipt_id=str(job["receipt_id"])))
        assert answer.proof.block.height == 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await receipts.ListReceipts(receipts_pb2.ListReceiptsRequest())
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
