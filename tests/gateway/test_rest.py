"""The seed documents' REST API over real HTTP, against the real coordinator."""

from __future__ import annotations

import re

import httpx
import pytest

from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.services.server import RunningCoordinator
from tests.conftest import TEST_CATALOG, Keys
from tests.gateway.conftest import MODEL, assigned, job_in_state, run_to_completion, running_gateway
from tests.support.scripted_miner import ScriptedMiner

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SEED_SUBMIT = {
    "prompt": "Explain quantum computing",
    "model": MODEL,
    "params": {"max_tokens": 50, "temperature": 0.7, "top_p": 0.9, "stream": False},
}


async def submit(http: httpx.AsyncClient, **overrides: object) -> dict[str, object]:
    """The seed's submit, queued even while no miner is online so that each test decides when one comes."""
    response = await http.post("/v1/jobs", json={**SEED_SUBMIT, "queue_if_unavailable": True, **overrides})
    assert response.status_code == 201, response.text
    job: dict[str, object] = response.json()
    return job


async def test_seed_submit_is_routed_at_once_to_a_free_miner(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    response = await http.post("/v1/jobs", json=SEED_SUBMIT)
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["status"], job["miner_id"]) == ("assigned", "m1")
    routing = job["routing"]
    assert (routing["miner_id"], routing["miner_reputation"]) == ("m1", 5000)
    assert routing["estimated_cost"] > 0
    assert isinstance(routing["estimated_cost"], int)  # µcr, a JSON integer
    assert re.fullmatch(r"[0-9a-f]{64}", routing["input_hash"])


async def test_seed_submit_with_no_miner_online_is_503(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/jobs", json=SEED_SUBMIT)
    assert response.status_code == 503
    body = response.json()
    assert body["error_code"] == "NO_ELIGIBLE_MINER"
    assert "no online miner serves llama-3.2-1b-instruct" in body["detail"]


async def test_submit_answers_201_with_the_seed_shape(http: httpx.AsyncClient) -> None:
    job = await submit(http)
    assert job["status"] == "pending"
    assert isinstance(job["job_id"], str)
    assert job["job_id"]
    assert job["model"] == "llama-3.2-1b-instruct"  # the catalog id the alias llama3.2 names
    assert job["routing"]["queue_position"] == 0  # type: ignore[index]
    assert RFC3339_UTC.match(str(job["created_at"]))
    # Fields without presence are printed, so a client can read them before they are set.
    assert (job["result"], job["progress"], job["miner_id"]) == ("", 0, "")
    assert job["params"] == {
        "max_tokens": 50,
        "temperature": 0.7,
        "top_p": pytest.approx(0.9),
        "stream": False,
        "stop": [],
    }
    assert "started_at" not in job


async def test_get_job_through_its_life(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = (await submit(http))["job_id"]
    assert isinstance(job_id, str)
    await assigned(miner)
    assigned_job = (await http.get(f"/v1/jobs/{job_id}")).json()
    assert (assigned_job["status"], assigned_job["miner_id"]) == ("assigned", "m1")

    await miner.started(job_id, 1)
    await miner.tokens(job_id, 1, "Quantum")
    running = await job_in_state(http, job_id, "running", result="Quantum")
    assert 0 < running["progress"] < 100
    assert RFC3339_UTC.match(running["started_at"])
    assert RFC3339_UTC.match(running["estimated_completion"])

    await miner.done(job_id, 1, "Quantum computing is", completion_tokens=3)
    done = await job_in_state(http, job_id, "completed")
    seed_keys = {"job_id", "status", "result", "progress", "miner_id", "created_at", "started_at", "completed_at"}
    assert seed_keys <= done.keys()
    assert done["status"] == "completed"
    assert done["result"] == "Quantum computing is"
    assert done["progress"] == 100
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 3}
    assert done["finish_reason"] == "length"
    assert all(RFC3339_UTC.match(done[key]) for key in ("created_at", "started_at", "completed_at"))


async def test_list_jobs_filters_by_status_and_limit(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    first = await submit(http)
    second = await submit(http)
    await assigned(miner)
    await assigned(miner)
    await run_to_completion(miner, str(first["job_id"]), "done")
    await job_in_state(http, str(first["job_id"]), "completed")

    response = await http.get("/v1/jobs", params={"status": "completed", "limit": 10})
    assert response.status_code == 200
    listing = response.json()
    assert [job["job_id"] for job in listing["jobs"]] == [first["job_id"]]
    assert listing["jobs"][0]["status"] == "completed"
    assert listing["next_page_token"] == ""

    everything = (await http.get("/v1/jobs")).json()["jobs"]
    assert [job["job_id"] for job in everything] == [second["job_id"], first["job_id"]]
    # The full enum name and the seed's spelling of a state are accepted too.
    for spelling in ("JOB_STATE_COMPLETED", "Completed"):
        filtered = (await http.get("/v1/jobs", params={"status": spelling})).json()["jobs"]
        assert [job["job_id"] for job in filtered] == [first["job_id"]]
    assert (await http.get("/v1/jobs", params={"status": "cancelled"})).json()["jobs"] == []


async def test_cancel_pending_job_then_conflict(http: httpx.AsyncClient) -> None:
    job_id = (await submit(http))["job_id"]
    response = await http.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"

    again = await http.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error_code"] == "JOB_NOT_CANCELABLE"


async def test_unknown_job_is_404_with_the_seed_error_body(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/jobs/job_missing")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "job 'job_missing' not found",
        "error_code": "JOB_NOT_FOUND",
        "field": "job_id",
    }


async def test_another_clients_job_is_404(http: httpx.AsyncClient, keys: Keys) -> None:
    job_id = (await submit(http))["job_id"]
    response = await http.get(f"/v1/jobs/{job_id}", headers={"X-Api-Key": keys.other_client})
    assert response.status_code == 404
    assert response.json()["error_code"] == "JOB_NOT_FOUND"


@pytest.mark.parametrize(
    ("headers", "status", "error_code"),
    [
        ({}, 401, "UNAUTHENTICATED"),
        ({"X-Api-Key": "aitbc_not_a_key"}, 401, "UNAUTHENTICATED"),
        ({"Authorization": "Bearer aitbc_not_a_key"}, 401, "UNAUTHENTICATED"),
    ],
)
async def test_missing_or_wrong_key_is_401(gateway: str, headers: dict[str, str], status: int, error_code: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers=headers) as anonymous:
        response = await anonymous.post("/v1/jobs", json=SEED_SUBMIT)
    assert response.status_code == status
    assert response.json()["error_code"] == error_code
    assert response.json()["detail"]


async def test_miner_key_on_client_api_is_403(http: httpx.AsyncClient, keys: Keys) -> None:
    response = await http.get("/v1/jobs", headers={"X-Api-Key": keys.miner})
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"


async def test_bearer_key_is_accepted(gateway: str, keys: Keys) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as client:
        response = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {keys.client}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "detail_part"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "expected a JSON object"),
        (b'{"prompt": "hi", "colour": "blue"}', "colour", "no field 'colour'"),
        (b'{"prompt": "hi", "params": {"max_tokens": "many"}}', None, "max_tokens"),
        (b'{"prompt": "hi", "params": {"max_tokens": 0}}', "params.max_tokens", "max_tokens"),
        (b'{"prompt": "hi", "params": {"tempo": 1}}', "params.tempo", "no field 'tempo'"),
    ],
)
async def test_bad_request_bodies_are_400(
    http: httpx.AsyncClient, body: bytes, field: str | None, detail_part: str
) -> None:
    response = await http.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == "INVALID_ARGUMENT"
    assert detail_part in error["detail"]
    assert error.get("field") == field


async def test_camel_case_request_fields_are_accepted(http: httpx.AsyncClient) -> None:
    job = await submit(http, params={"maxTokens": 7, "topP": 0.5})
    assert job["params"]["max_tokens"] == 7  # type: ignore[index]


async def test_bad_query_parameters_are_400(http: httpx.AsyncClient) -> None:
    unknown_state = await http.get("/v1/jobs", params={"status": "sleeping"})
    assert unknown_state.status_code == 400
    assert unknown_state.json()["field"] == "status"
    assert "pending, assigned, running, completed, failed, canceled" in unknown_state.json()["detail"]
    typo = await http.get("/v1/jobs", params={"state": "completed"})
    assert (typo.status_code, typo.json()["field"]) == (400, "state")


async def test_unknown_route_and_wrong_method_are_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found", "error_code": "NOT_FOUND"}

    wrong = await http.put("/v1/jobs/job_x")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["allow"] == "DELETE, GET"


async def test_api_prefix_serves_the_same_routes(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/jobs", json={**SEED_SUBMIT, "queue_if_unavailable": True})
    assert response.status_code == 201
    job_id = response.json()["job_id"]
    assert (await http.get(f"/api/v1/jobs/{job_id}")).json()["job_id"] == job_id
    assert (await http.get("/api/health")).status_code == 200
    assert (await http.get("/api/v1/nothing")).status_code == 404


async def test_the_catalog_is_the_openai_list_shape(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    response = await http.get("/v1/catalog")
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    by_id = {model["id"]: model for model in listing["data"]}
    model = by_id["llama-3.2-1b-instruct"]  # the catalog entry whose alias the miner advertised
    assert (model["object"], model["owned_by"], model["miners"], model["free_slots"]) == ("model", "aitbc", 1, 4)
    assert MODEL in model["aliases"]
    assert isinstance(model["created"], int)
    assert model["created"] > 0
    assert by_id["codellama-7b-instruct"]["miners"] == 0  # in the catalog, nobody serves it now


async def test_health_follows_the_coordinator(http: httpx.AsyncClient, coordinator: RunningCoordinator) -> None:
    async with httpx.AsyncClient(base_url=http.base_url) as anonymous:
        healthy = await anonymous.get("/health")
        assert healthy.status_code == 200
        assert healthy.json() == {"status": "ok", "gateway": "serving", "coordinator": "serving"}
        await coordinator.health.enter_graceful_shutdown()
        draining = await anonymous.get("/health")
    assert draining.status_code == 503
    assert draining.json()["coordinator"] == "not_serving"


async def test_unreachable_coordinator_is_503(unused_tcp_port: int, keys: Keys) -> None:
    async with (
        running_gateway(f"127.0.0.1:{unused_tcp_port}") as address,
        httpx.AsyncClient(base_url=f"http://{address}", headers={"X-Api-Key": keys.client}) as client,
    ):
        response = await client.get("/v1/jobs")
        health = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["error_code"] == "UNAVAILABLE"
    assert health.status_code == 503
    assert health.json()["coordinator"].startswith("unreachable")


class TestQueueLimit:
    @pytest.fixture
    def coordinator_config(self) -> CoordinatorConfig:
        return CoordinatorConfig(catalog=TEST_CATALOG, max_queued_per_client=1)

    async def test_a_full_queue_is_429_with_retry_after(self, http: httpx.AsyncClient) -> None:
        await submit(http)
        response = await http.post("/v1/jobs", json={**SEED_SUBMIT, "queue_if_unavailable": True})
        assert response.status_code == 429
        assert response.json()["error_code"] == "QUEUE_FULL"
        assert int(response.headers["Retry-After"]) >= 1
