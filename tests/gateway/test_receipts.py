"""Receipts end to end: a charged job names its receipt, REST serves it, `aitbc verify` checks it offline."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitbc.cli import main
from aitbc.domain.canonical import text_hash
from aitbc.services.server import RunningCoordinator
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


def _verdicts(out: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in out.splitlines()}


async def test_aitbc_verify_checks_a_receipt_and_its_block_and_names_each_tampered_part(
    http: httpx.AsyncClient,
    miner: ScriptedMiner,
    coordinator: RunningCoordinator,
    target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = await completed_job(http, miner)
    receipt_id = str(job["receipt_id"])
    output = tmp_path / "output.txt"
    output.write_text(OUTPUT, encoding="utf-8")
    # Not sealed yet, and no time to wait: the block's checks are skipped, and say why.
    unsealed = ["verify", receipt_id, "--output-file", str(output), "--coordinator", target, "--wait", "0"]
    assert await asyncio.to_thread(main, unsealed) == 0
    assert _verdicts(capsys.readouterr().out)["inclusion_proof"] == "skipped"

    await coordinator.coordinator._blocks.seal_pending()  # the next tick's work, now
    # By id, with no API key: a receipt is public.
    sealed = ["verify", receipt_id, "--output-file", str(output), "--coordinator", target]
    assert await asyncio.to_thread(main, sealed) == 0
    captured = capsys.readouterr()
    assert _verdicts(captured.out) == {
        "coordinator_signature": "passed",
        "miner_signature": "skipped",  # the scripted miner does not sign
        "amounts": "passed",
        "output_hash": "passed",
        "block_signature": "passed",
        "inclusion_proof": "passed",
    }
    key = captured.err.split("reports, ")[1].split(";")[0]

    # Offline: what REST answered, saved to a file, and the pinned key.
    saved = tmp_path / "receipt.json"
    answer = (await http.get(f"/v1/receipts/{receipt_id}")).json()
    offline = ["verify", str(saved), f"--coordinator-key={key}", "--output-file", str(output)]

    def failures(document: dict[str, Any]) -> list[str]:
        saved.write_text(json.dumps(document), encoding="utf-8")
        code = main(offline)
        verdicts = _verdicts(capsys.readouterr().out)
        failed = [name for name, verdict in verdicts.items() if verdict == "failed"]
        assert code == (1 if failed else 0)
        return failed

    assert failures(answer) == []
    # One changed character in each part is caught, and the check that caught it is named.
    tampered = copy.deepcopy(answer)
    tampered["receipt"]["charged"] = 10
    assert failures(tampered) == ["coordinator_signature", "amounts", "inclusion_proof"]
    tampered = copy.deepcopy(answer)
    tampered["receipt"]["output_hash"] = _flip(tampered["receipt"]["output_hash"])
    assert failures(tampered) == ["coordinator_signature", "output_hash", "inclusion_proof"]
    tampered = copy.deepcopy(answer)
    tampered["proof"]["block"]["tx_root"] = _flip(tampered["proof"]["block"]["tx_root"])
    assert failures(tampered) == ["block_signature"]
    tampered = copy.deepcopy(answer)
    tampered["proof"]["block"]["receipts_root"] = _flip(tampered["proof"]["block"]["receipts_root"])
    assert failures(tampered) == ["block_signature", "inclusion_proof"]
    tampered = copy.deepcopy(answer)
    tampered["proof"]["proof"]["leaf_index"] = 1
    assert failures(tampered) == ["inclusion_proof"]
    output.write_text(OUTPUT + ".", encoding="utf-8")
    assert failures(answer) == ["output_hash"]


def _flip(digest: str) -> str:
    """`digest` with its first hex digit changed."""
    return ("1" if digest[0] == "0" else "0") + digest[1:]
