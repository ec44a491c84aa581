"""Receipts end to end: a charged job names its receipt, REST serves it, `aitbc verify` checks it offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from aitbc.cli import main
from aitbc.domain.canonical import text_hash
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, job_in_state
from tests.support.scripted_miner import ScriptedMiner

OUTPUT = "Quantum computing is"


async def completed_job(http: httpx.AsyncClient, miner: ScriptedMiner) -> dict[str, object]:
    response = await http.post("/v1/jobs", json={"prompt": "Explain quantum computing", "model": MODEL})
    assert response.status_code == 201, response.text
    job_id = str(response.json()["job_id"])
    await miner.expect("assign")
    await miner.done(job_id, 1, OUTPUT, completion_tokens=3)
    return await job_in_state(http, job_id, "completed")


async def test_a_charged_job_names_its_receipt_and_rest_serves_it(
    http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    job = await completed_job(http, miner)
    receipt_id = job["receipt_id"]
    assert isinstance(receipt_id, str)
    assert receipt_id.startswith("rcpt_")
    response = await http.get(f"/v1/receipts/{receipt_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    receipt = body["receipt"]
    assert (receipt["type"], receipt["job_id"], receipt["outcome"]) == ("aitbc.receipt.v1", job["job_id"], "completed")
    assert (receipt["prompt_tokens"], receipt["completion_tokens"]) == (5, 3)
    # llama3.2 at 1000 / 2000 µcr per 1k: (5000 + 6000) / 1000 = 11 µcr, a 5% fee of it rounds down to 0.
    assert (receipt["charged"], receipt["miner_earnings"], receipt["fee"]) == (11, 11, 0)
    assert receipt["output_hash"] == text_hash(OUTPUT)
    assert receipt["miner_signed"] is False
    assert len(body["coordinator_public_key"]) == 43
    listed = (await http.get("/v1/receipts", params={"limit": 20})).json()["receipts"]
    assert [item["receipt_id"] for item in listed] == [receipt_id]
    by_client = await http.get("/v1/receipts", params={"client": receipt["client"]})
    assert [item["receipt_id"] for item in by_client.json()["receipts"]] == [receipt_id]
    missing = await http.get("/v1/receipts/rcpt_nothing")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RECEIPT_NOT_FOUND")
    bad = await http.get("/v1/receipts", params={"client": "ait1notanaddress"})
    assert (bad.status_code, bad.json()["field"]) == (400, "client")


async def test_aitbc_verify_checks_a_receipt_offline_and_fails_a_tampered_one(
    http: httpx.AsyncClient,
    miner: ScriptedMiner,
    target: str,
    keys: Keys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = await completed_job(http, miner)
    output = tmp_path / "output.txt"
    output.write_text(OUTPUT, encoding="utf-8")
    fetch = ("--coordinator", target, "--api-key", keys.client)
    code = await asyncio.to_thread(main, ["verify", str(job["receipt_id"]), "--output-file", str(output), *fetch])
    captured = capsys.readouterr()
    assert code == 0, captured
    lines = captured.out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["coordinator_signature", "passed"],
        ["miner_signature", "skipped"],
        ["amounts", "passed"],
        ["output_hash", "passed"],
        ["block_signature", "skipped"],
        ["inclusion_proof", "skipped"],
    ]
    key = captured.err.split("reports, ")[1].split(";")[0]

    # Offline: the receipt as a file and the pinned key; one changed amount fails the signature.
    response = await http.get(f"/v1/receipts/{job['receipt_id']}")
    receipt = response.json()["receipt"]
    receipt.update(miner_public_key=None, miner_signature=None)  # the signed JSON has nulls where REST omits
    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps(receipt), encoding="utf-8")
    assert main(["verify", str(saved), f"--coordinator-key={key}"]) == 0
    receipt["charged"] = 10
    saved.write_text(json.dumps(receipt), encoding="utf-8")
    capsys.readouterr()
    assert main(["verify", str(saved), f"--coordinator-key={key}"]) == 1
    failed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.split()[1] == "failed"]
    assert failed == ["coordinator_signature", "amounts"]
