"""Results end to end (docs/results.md): REST through the gateway and the CLI, over a real coordinator.

The coordinator runs on a ManualClock, so share-link expiry is tested by moving time, not by waiting.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitbc.api_descriptors import keyless_paths
from aitbc.cli import main
from aitbc.coordinator.clock import ManualClock
from aitbc.services.server import RunningCoordinator
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, cancel_acknowledged, job_in_state, run_to_completion
from tests.support.scripted_miner import ScriptedMiner

OUTPUT = ("Paris", " is the capital", ", with a comma")
RESULT = "".join(OUTPUT)


@pytest.fixture
def clock() -> ManualClock:
    # Near real time, so that the gateway's and the coordinator's clocks do not disagree by years.
    return ManualClock(datetime.now().astimezone())


async def completed(http: httpx.AsyncClient, miner: ScriptedMiner) -> str:
    response = await http.post("/v1/jobs", json={"prompt": "What is the capital of France?", "model": MODEL})
    assert response.status_code == 201, response.text
    job_id = str(response.json()["job_id"])
    await miner.expect("assign")
    await run_to_completion(miner, job_id, *OUTPUT)
    await job_in_state(http, job_id, "completed")
    return job_id


def sha256sum_c(sha256sum: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """The seed's check, run as written in the folder the package was unpacked into."""
    return subprocess.run([sha256sum, "-c", "output.sha256"], cwd=folder, capture_output=True, text=True, check=False)


def cli(*args: str) -> int:
    return main(list(args))


async def test_download_serves_the_zip_and_each_single_form(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = await completed(http, miner)
    response = await http.get(f"/v1/jobs/{job_id}/download")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    stem = "job_" + job_id.removeprefix("job_")
    assert response.headers["content-disposition"] == f'attachment; filename="{stem}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(archive.namelist())
        result = archive.read("result.txt").decode()
        output = json.loads(archive.read("output.json"))
        receipt = json.loads(archive.read("receipt.json"))
    assert names == ["artifacts/", "logs/stderr.log", "logs/stdout.log", "output.json", "receipt.json", "result.txt"]
    assert result == RESULT
    assert (output["job_id"], output["status"], output["receipt_id"]) == (job_id, "completed", receipt["receipt_id"])

    text = await http.get(f"/v1/jobs/{job_id}/download", params={"format": "txt"})
    assert (text.status_code, text.text) == (200, RESULT)
    assert text.headers["content-type"].startswith("text/plain")
    document = await http.get(f"/v1/jobs/{job_id}/download", params={"format": "json"})
    assert document.json()["result"] == RESULT
    assert document.headers["content-disposition"].endswith(f'{stem}.json"')


async def test_bad_requests_get_a_clear_4xx_naming_the_field(
    http: httpx.AsyncClient, miner: ScriptedMiner, gateway: str, keys: Keys
) -> None:
    job_id = await completed(http, miner)
    cases: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
        ("GET", f"/v1/jobs/{job_id}/download", {"params": {"format": "xml"}}, 400, "INVALID_ARGUMENT", "format"),
        ("GET", "/v1/jobs/job_000000000000000000000000/download", {}, 404, "JOB_NOT_FOUND", "job_id"),
        ("POST", f"/v1/jobs/{job_id}/share", {"json": {"expires": "7w"}}, 400, "INVALID_ARGUMENT", "expires"),
        ("POST", f"/v1/jobs/{job_id}/share", {"json": {"expires": "400d"}}, 400, "INVALID_ARGUMENT", "expires"),
        ("GET", "/v1/shared/share_unknown", {}, 404, "SHARE_LINK_NOT_FOUND", "token"),
        ("POST", f"/v1/jobs/{job_id}/shares/shr_nothing/revoke", {}, 404, "SHARE_LINK_NOT_FOUND", "share_id"),
    ]
    for method, path, extra, status, code, field in cases:
        response = await http.request(method, path, **extra)
        body = response.json()
        assert (response.status_code, body["error_code"], body.get("field")) == (status, code, field), body
        assert body["detail"]
    # Another tenant's job is as unknown as a missing one, on every route.
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.other_client}) as other:
        for method, path in [
            ("GET", f"/v1/jobs/{job_id}/download"),
            ("GET", f"/v1/jobs/{job_id}/checksums"),
            ("POST", f"/v1/jobs/{job_id}/share"),
            ("GET", f"/v1/jobs/{job_id}/shares"),
            ("DELETE", f"/v1/jobs/{job_id}"),
        ]:
            response = await other.request(method, path)
            assert (response.status_code, response.json()["error_code"]) == (404, "JOB_NOT_FOUND"), path
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        response = await anonymous.get(f"/v1/jobs/{job_id}/download")
        assert (response.status_code, response.json()["error_code"]) == (401, "UNAUTHENTICATED")


async def test_share_links_work_without_a_key_until_revoked_or_expired(
    http: httpx.AsyncClient, miner: ScriptedMiner, gateway: str, clock: ManualClock
) -> None:
    job_id = await completed(http, miner)
    created = await http.post(f"/v1/jobs/{job_id}/share", json={"expires": "1h"})
    assert created.status_code == 201, created.text
    body = created.json()
    token, link = body["token"], body["link"]
    assert body["path"] == f"/v1/shared/{token}"
    assert body["url"] == f"http://127.0.0.1:8080/v1/shared/{token}"
    assert (link["status"], link["job_id"]) == ("active", job_id)
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anyone:  # no key at all
        shared = await anyone.get(body["path"])
        assert shared.status_code == 200, shared.text
        assert {key: shared.json()[key] for key in ("job_id", "status", "result")} == {
            "job_id": job_id,
            "status": "completed",
            "result": RESULT,
        }
        assert "prompt" not in shared.json()
        # A key sent along, even a malformed one, is not looked at.
        with_key = await anyone.get(body["path"], headers={"X-Api-Key": "x" * 600})
        assert with_key.status_code == 200
        # The link opens one job's result: the key-less caller still cannot reach anything else.
        other = await anyone.get(f"/v1/jobs/{job_id}")
        assert other.status_code == 401

        await clock.advance(3600)
        expired = await anyone.get(body["path"])
        assert (expired.status_code, expired.json()["error_code"]) == (410, "SHARE_LINK_EXPIRED")
        assert "expired at" in expired.json()["detail"]

        second = (await http.post(f"/v1/jobs/{job_id}/share", json={})).json()
        listed = (await http.get(f"/v1/jobs/{job_id}/shares")).json()["links"]
        assert [(item["share_id"], item["status"]) for item in listed] == [
            (second["link"]["share_id"], "active"),
            (link["share_id"], "expired"),
        ]
        revoked = await http.post(f"/v1/jobs/{job_id}/shares/{second['link']['share_id']}/revoke")
        assert (revoked.status_code, revoked.json()["link"]["status"]) == (200, "revoked")
        gone = await anyone.get(second["path"])
        assert (gone.status_code, gone.json()["error_code"]) == (410, "SHARE_LINK_REVOKED")
        assert "revoked by its owner" in gone.json()["detail"]


async def test_delete_leaves_a_tombstone_kills_links_and_needs_force_while_running(
    http: httpx.AsyncClient, miner: ScriptedMiner, gateway: str
) -> None:
    job_id = await completed(http, miner)
    link = (await http.post(f"/v1/jobs/{job_id}/share", json={})).json()
    deleted = await http.delete(f"/v1/jobs/{job_id}")
    assert deleted.status_code == 200, deleted.text
    assert (deleted.json()["status"], bool(deleted.json()["receipt_id"])) == ("completed", True)
    tombstone = (await http.get(f"/v1/jobs/{job_id}")).json()
    assert (tombstone["prompt"], tombstone["result"], tombstone["status"]) == ("", "", "completed")
    assert tombstone["usage"] == {"prompt_tokens": 5, "completion_tokens": 3}
    assert tombstone["result_expires_at"] == deleted.json()["deleted_at"]
    download = await http.get(f"/v1/jobs/{job_id}/download")
    assert (download.status_code, download.json()["error_code"]) == (410, "RESULT_DELETED")
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anyone:
        dead = await anyone.get(link["path"])
        assert (dead.status_code, dead.json()["error_code"]) == (410, "RESULT_DELETED")
    receipt = await http.get(f"/v1/receipts/{tombstone['receipt_id']}")
    assert receipt.status_code == 200

    running = (await http.post("/v1/jobs", json={"prompt": "long", "model": MODEL})).json()["job_id"]
    await miner.expect("assign")
    await miner.started(running, 1)
    refused = await http.delete(f"/v1/jobs/{running}")
    assert (refused.status_code, refused.json()["error_code"]) == (409, "JOB_NOT_FINISHED")
    forced = asyncio.create_task(http.delete(f"/v1/jobs/{running}", params={"force": "true"}))
    await cancel_acknowledged(miner, running, 0)
    response = await forced
    assert (response.status_code, response.json()["status"]) == (200, "canceled")


async def test_cli_download_checksum_verify_share_delete(
    http: httpx.AsyncClient, miner: ScriptedMiner, target: str, keys: Keys, tmp_path: Path
) -> None:
    job_id = await completed(http, miner)
    connection = ("--coordinator", target, "--api-key", keys.client)
    results = tmp_path / "results"
    download = ["client", "download", "--job-id", job_id, "--output", str(results), "--checksum", *connection]
    assert await asyncio.to_thread(cli, *download) == 0
    assert (results / "result.txt").read_text() == RESULT
    assert (results / "artifacts").is_dir()
    sums = (results / "output.sha256").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == [
        "logs/stderr.log",
        "logs/stdout.log",
        "output.json",
        "receipt.json",
        "result.txt",
    ]
    sha256sum = shutil.which("sha256sum")
    assert sha256sum is not None
    checked = await asyncio.to_thread(sha256sum_c, sha256sum, results)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "result.txt: OK" in checked.stdout

    # The seed's short form, into the current folder's default.
    short = tmp_path / "short"
    assert await asyncio.to_thread(cli, "download", job_id, "--output", str(short), *connection) == 0
    assert (short / "result.txt").read_text() == RESULT

    verify = ["client", "verify", "--job-id", job_id, "--dir", str(results), *connection]
    assert await asyncio.to_thread(cli, *verify) == 0
    (results / "result.txt").write_text(RESULT + " (edited)")
    assert await asyncio.to_thread(cli, *verify) == 1
    tampered = await asyncio.to_thread(sha256sum_c, sha256sum, results)
    assert tampered.returncode == 1

    assert await asyncio.to_thread(cli, "client", "share", "--job-id", job_id, "--expires", "2d", *connection) == 0
    assert await asyncio.to_thread(cli, "client", "share", "--job-id", job_id, "--expires", "2y", *connection) == 1
    assert await asyncio.to_thread(cli, "client", "delete", "--job-id", job_id, *connection) == 0
    assert await asyncio.to_thread(cli, *download) == 1


async def test_cli_verify_names_the_file_that_differs(
    http: httpx.AsyncClient, miner: ScriptedMiner, target: str, keys: Keys, tmp_path: Path, capsys: Any
) -> None:
    job_id = await completed(http, miner)
    connection = ("--coordinator", target, "--api-key", keys.client)
    assert await asyncio.to_thread(cli, "download", job_id, "--output", str(tmp_path), *connection) == 0
    capsys.readouterr()
    (tmp_path / "logs" / "stdout.log").write_text("not what the miner said\n")
    (tmp_path / "receipt.json").unlink()
    assert (
        await asyncio.to_thread(cli, "client", "verify", "--job-id", job_id, "--dir", str(tmp_path), *connection) == 1
    )
    captured = capsys.readouterr()
    statuses = dict(line.split()[:2] for line in captured.out.splitlines() if line.split())
    assert statuses["logs/stdout.log"] == "differs"
    assert statuses["receipt.json"] == "missing"
    assert statuses["result.txt"] == "ok"
    assert "logs/stdout.log, receipt.json" in captured.err


async def test_an_admins_plan_sets_how_long_results_are_kept(
    http: httpx.AsyncClient,
    miner: ScriptedMiner,
    gateway: str,
    keys: Keys,
    target: str,
    coordinator: RunningCoordinator,
    capsys: Any,
) -> None:
    job_id = await completed(http, miner)
    job = (await http.get(f"/v1/jobs/{job_id}")).json()
    completed_at = datetime.fromisoformat(job["completed_at"])
    assert datetime.fromisoformat(job["result_expires_at"]) - completed_at == timedelta(days=7)
    account = (await http.get("/v1/account")).json()
    assert account["plan"] == "free"

    refused = await http.post(f"/v1/accounts/{account['account']}:setPlan", json={"plan": "pro"})
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.admin}) as admin:
        bad = await admin.post(f"/v1/accounts/{account['account']}:setPlan", json={"plan": "gold"})
        assert (bad.status_code, bad.json()["field"]) == (400, "plan")
        done = await admin.post(f"/v1/accounts/{account['account']}:setPlan", json={"plan": "pro"})
        assert (done.status_code, done.json()["plan"]) == (200, "pro")
    job = (await http.get(f"/v1/jobs/{job_id}")).json()
    assert datetime.fromisoformat(job["result_expires_at"]) - completed_at == timedelta(days=30)

    as_admin = ("--coordinator", target, "--api-key", keys.admin)
    assert await asyncio.to_thread(cli, "accounts", "plan", account["account"], "enterprise", *as_admin) == 0
    assert "plan       enterprise" in capsys.readouterr().out
    assert coordinator.coordinator.retention.plan_of(account["account"]).value == "enterprise"


def test_the_shared_result_is_keyless_and_nothing_else_of_results_is() -> None:
    assert {path for path in keyless_paths() if "ResultService" in path} == {"/aitbc.v1.ResultService/GetSharedResult"}


async def test_openapi_describes_the_download_as_a_file(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    download = spec["paths"]["/v1/jobs/{job_id}/download"]["get"]["responses"]["200"]["content"]
    assert download == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    assert "delete" in spec["paths"]["/v1/jobs/{job_id}"]
    assert "get" in spec["paths"]["/v1/shared/{token}"]


async def test_cli_share_lists_and_revokes_links(
    http: httpx.AsyncClient, miner: ScriptedMiner, gateway: str, target: str, keys: Keys, capsys: Any
) -> None:
    job_id = await completed(http, miner)
    connection = ("--coordinator", target, "--api-key", keys.client)
    assert await asyncio.to_thread(cli, "share", job_id, "--expires", "12h", *connection) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:8080/v1/shared/share_")
    path = url.removeprefix("http://127.0.0.1:8080")
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anyone:
        assert (await anyone.get(path)).json()["result"] == RESULT
        assert await asyncio.to_thread(cli, "client", "share", "--job-id", job_id, "--list", *connection) == 0
        [line] = capsys.readouterr().out.splitlines()
        share_id, status = line.split()[:2]
        assert status == "active"
        assert await asyncio.to_thread(cli, "share", job_id, "--revoke", share_id, *connection) == 0
        assert "revoked" in capsys.readouterr().out
        assert (await anyone.get(path)).status_code == 410
    assert await asyncio.to_thread(cli, "share", job_id, "--revoke", "shr_nothing", *connection) == 1
    assert "SHARE_LINK_NOT_FOUND" in capsys.readouterr().err
