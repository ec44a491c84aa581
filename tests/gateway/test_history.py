"""History over REST: list filters, the export as a CSV or JSON document, stats, British spellings,
webhooks, and every bad input answered 4xx naming its field."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.domain.webhooks import verify_signature
from tests.conftest import TEST_CATALOG, Keys
from tests.gateway.conftest import MODEL, assigned, cancel_acknowledged, job_in_state
from tests.support.scripted_miner import ScriptedMiner
from tests.support.webhook_receiver import webhook_receiver

# Prompts a CSV writer must quote: commas, quotes, line breaks of both kinds, a leading space, Unicode.
AWKWARD_PROMPTS = [
    'He said "hi", then left',
    "line one\nline two\r\nline three",
    " leading space, trailing comma,",
    "naïve café — ✓",
]


@pytest.fixture
def coordinator_config() -> CoordinatorConfig:
    # Webhooks reach the loopback receiver, as `aitbc up --allow-private-webhooks` lets them.
    return CoordinatorConfig(cancel_ack_timeout=5.0, catalog=TEST_CATALOG, allow_private_webhooks=True)


async def submit(http: httpx.AsyncClient, prompt: str) -> str:
    body = {"prompt": prompt, "model": "tiny", "queue_if_unavailable": True, "params": {"max_tokens": 8}}
    response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def problem(response: httpx.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = response.json()
    assert "error_code" in body, (response.request.url, response.text[:300])
    return response.status_code, body["error_code"], body.get("field", "")


async def test_export_round_trips_awkward_prompts_as_csv_and_json(http: httpx.AsyncClient) -> None:
    ids = [await submit(http, prompt) for prompt in AWKWARD_PROMPTS]
    await http.post(f"/v1/jobs/{ids[0]}/cancel", json={})

    response = await http.get("/v1/jobs:export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert b"\r\n" in response.content  # RFC 4180 line ends
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert [row["job_id"] for row in rows] == ids[::-1]
    assert [row["prompt"] for row in rows] == AWKWARD_PROMPTS[::-1]
    assert rows[-1]["status"] == "canceled"
    assert rows[0]["cost"] == "0"

    response = await http.get("/v1/jobs:export", params={"format": "json", "status": "pending"})
    assert response.headers["content-type"].startswith("application/json")
    exported = json.loads(response.content)
    assert [job["prompt"] for job in exported] == AWKWARD_PROMPTS[:0:-1]
    assert {job["status"] for job in exported} == {"pending"}

    empty = await http.get("/v1/jobs:export", params={"model": "m"})
    assert json.loads(empty.content) == []


async def test_list_filters_and_stats(http: httpx.AsyncClient) -> None:
    first = await submit(http, "one")
    second = await submit(http, "two")
    await http.post(f"/v1/jobs/{first}/cancel", json={})
    now = datetime.now(UTC)
    window = {
        "created_after": (now - timedelta(hours=1)).isoformat(),
        "created_before": (now + timedelta(hours=1)).isoformat(),
    }
    listed = (await http.get("/v1/jobs", params={**window, "model": "tiny", "limit": 1})).json()
    assert [job["job_id"] for job in listed["jobs"]] == [second]
    more = (await http.get("/v1/jobs", params={**window, "limit": 1, "page_token": listed["next_page_token"]})).json()
    assert [job["job_id"] for job in more["jobs"]] == [first]
    future = {"created_after": (now + timedelta(hours=1)).isoformat()}
    assert (await http.get("/v1/jobs", params=future)).json()["jobs"] == []
    assert len((await http.get("/v1/jobs", params={"days": 1})).json()["jobs"]) == 2

    stats = (await http.get("/v1/jobs/stats")).json()
    assert stats["total_jobs"] == 2
    assert stats["counts"] == {"pending": 1, "assigned": 0, "running": 0, "completed": 0, "failed": 0, "canceled": 1}
    assert (stats["finished_jobs"], stats["success_rate"], stats["total_spent"]) == (1, 0, 0)
    assert "created_after" not in stats  # all time
    assert (await http.get("/v1/jobs/stats", params=future)).json()["total_jobs"] == 0


async def test_canceled_reads_cancelled_when_asked(http: httpx.AsyncClient) -> None:
    job_id = await submit(http, "to cancel")
    canceled = (await http.post(f"/v1/jobs/{job_id}/cancel", json={})).json()
    assert canceled["status"] == "canceled"
    british = (await http.get(f"/v1/jobs/{job_id}", params={"state_spelling": "british"})).json()
    assert british["status"] == "cancelled"
    listed = (await http.get("/v1/jobs", params={"state_spelling": "british", "status": "cancelled"})).json()
    assert [job["status"] for job in listed["jobs"]] == ["cancelled"]
    assert (await http.get(f"/v1/jobs/{job_id}", params={"state_spelling": "american"})).json()["status"] == "canceled"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/jobs", {"created_after": "2026-13-01T00:00:00Z"}, "created_after"),
        ("/v1/jobs", {"created_after": "yesterday"}, "created_after"),
        (
            "/v1/jobs:export",
            {"created_after": "2026-02-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
            "created_before",
        ),
        (
            "/v1/jobs/stats",
            {"created_after": "2026-02-01T00:00:00Z", "created_before": "2026-01-31T23:59:59Z"},
            "created_before",
        ),
        ("/v1/jobs", {"days": "-1"}, "days"),
        ("/v1/jobs", {"days": "30", "created_after": "2026-02-01T00:00:00Z"}, "days"),
        ("/v1/jobs:export", {"format": "xml"}, "format"),
        ("/v1/jobs", {"status": "canceling"}, "status"),
        ("/v1/jobs/stats", {"state_spelling": "klingon"}, "state_spelling"),
    ],
)
async def test_bad_history_input_is_a_400_naming_the_field(
    http: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    response = await http.get(path, params=params)
    status, code, named = problem(response)
    assert (status, code) == (400, "INVALID_ARGUMENT"), response.text
    assert named == field
    assert response.json()["detail"]


async def test_unknown_and_other_tenants_jobs_are_404(http: httpx.AsyncClient, gateway: str, keys: Keys) -> None:
    job_id = await submit(http, "mine")
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.other_client}) as other:
        for response in (
            await other.get(f"/v1/jobs/{job_id}"),
            await other.post(f"/v1/jobs/{job_id}/cancel", json={}),
            await http.get("/v1/jobs/job_000000000000000000000000"),
        ):
            assert problem(response) == (404, "JOB_NOT_FOUND", "job_id")
        assert (await other.get("/v1/jobs:export")).content == b"[]\n"
        assert (await other.get("/v1/jobs/stats")).json()["total_jobs"] == 0


async def test_webhooks_over_rest(http: httpx.AsyncClient, gateway: str, keys: Keys) -> None:
    async with webhook_receiver() as receiver:
        created = await http.post("/v1/webhooks", json={"url": receiver.url, "events": ["job.canceled"]})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        webhook = created.json()["webhook"]
        assert secret.startswith("whsec_")
        hook_id = webhook["webhook_id"]
        assert (await http.get("/v1/webhooks")).json()["webhooks"] == [webhook]
        assert "secret" not in (await http.get(f"/v1/webhooks/{hook_id}")).text

        job_id = await submit(http, "hooked")
        await http.post(f"/v1/jobs/{job_id}/cancel", json={})
        [received] = await receiver.wait_for(1)
        now = int(datetime.now(UTC).timestamp())
        assert verify_signature(secret, received.headers["aitbc-signature"], received.body, now=now)
        assert json.loads(received.body)["data"]["job_id"] == job_id

        tested = (await http.post(f"/v1/webhooks/{hook_id}/test", json={})).json()["delivery"]
        assert tested["event"] == "webhook.test"
        await receiver.wait_for(2)

        async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.other_client}) as other:
            assert problem(await other.get(f"/v1/webhooks/{hook_id}")) == (404, "WEBHOOK_NOT_FOUND", "webhook_id")
            assert problem(await other.delete(f"/v1/webhooks/{hook_id}")) == (404, "WEBHOOK_NOT_FOUND", "webhook_id")

        bad_url = await http.post("/v1/webhooks", json={"url": "file:///etc/passwd", "events": ["job.failed"]})
        assert problem(bad_url) == (400, "INVALID_ARGUMENT", "url")
        bad_event = await http.post("/v1/webhooks", json={"url": receiver.url, "events": ["job.exploded"]})
        assert problem(bad_event) == (400, "INVALID_ARGUMENT", "events")

        assert (await http.delete(f"/v1/webhooks/{hook_id}")).status_code == 200
        assert (await http.get("/v1/webhooks")).json()["webhooks"] == []


async def test_a_running_job_reads_canceling_until_its_miner_acknowledges(
    http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    response = await http.post("/v1/jobs", json={"prompt": "long story", "model": MODEL, "params": {"max_tokens": 50}})
    job_id = response.json()["job_id"]
    await assigned(miner)
    await miner.started(job_id, 1)
    await miner.tokens(job_id, 1, "Once")
    await job_in_state(http, job_id, "running")
    cancel = asyncio.create_task(http.post(f"/v1/jobs/{job_id}/cancel", json={}))
    canceling = await job_in_state(http, job_id, "canceling")
    assert canceling["cancel_requested"] is True
    british = (await http.get(f"/v1/jobs/{job_id}", params={"state_spelling": "british"})).json()
    assert british["status"] == "cancelling"
    await cancel_acknowledged(miner, job_id, completion_tokens=1)
    done = (await cancel).json()
    assert (done["status"], done["cancel_requested"], done["result"]) == ("canceled", False, "Once")


async def test_an_empty_window_is_no_error(http: httpx.AsyncClient) -> None:
    moment = "2026-02-01T00:00:00Z"
    response = await http.get("/v1/jobs/stats", params={"created_after": moment, "created_before": moment})
    assert response.status_code == 200, response.text
    assert response.json()["total_jobs"] == 0
