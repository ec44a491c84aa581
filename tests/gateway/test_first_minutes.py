"""What a newcomer meets over HTTP first: the seed's requests without a model, errors in HTTP's words, and
the CLI printing a job exactly as REST does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from openai import APIStatusError, AsyncOpenAI

from aitbc.cli import main
from tests.conftest import Keys
from tests.gateway.conftest import assigned, job_in_state, run_to_completion
from tests.support.scripted_miner import ScriptedMiner

DEFAULT_ID = "llama-3.2-1b-instruct"  # the test coordinator's default model, llama3.2, as the catalog names it


async def test_the_seeds_curl_submit_without_a_model_runs_on_the_default(
    http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    response = await http.post("/v1/jobs", json={"prompt": "Hello, world!", "params": {"max_tokens": 50}})
    assert response.status_code == 201, response.text
    assert (response.json()["model"], response.json()["status"]) == (DEFAULT_ID, "assigned")
    assert (await assigned(miner)).job_id == response.json()["job_id"]


async def test_models_marks_the_default(http: httpx.AsyncClient) -> None:
    models = (await http.get("/v1/catalog")).json()["data"]
    assert [model["id"] for model in models if model["is_default"]] == [DEFAULT_ID]


async def test_a_missing_key_is_asked_for_in_http_terms(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        response = await anonymous.post("/v1/jobs", json={"prompt": "hi"})
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert "X-Api-Key header" in body["detail"]
    assert "metadata" not in body["detail"]


async def test_rest_keeps_the_api_advice_and_openai_drops_it(http: httpx.AsyncClient, gateway: str, keys: Keys) -> None:
    rest = await http.post("/v1/jobs", json={"prompt": "hi", "model": "tiny"})
    assert rest.status_code == 503
    assert rest.json()["detail"] == "no online miner serves tiny; set queue_if_unavailable to wait for one"
    async with AsyncOpenAI(base_url=f"http://{gateway}/v1", api_key=keys.client, max_retries=0) as client:
        with pytest.raises(APIStatusError) as refused:
            await client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 503
    # An OpenAI request cannot carry queue_if_unavailable: the message does not ask for it.
    assert refused.value.response.json()["error"]["message"] == "no online miner serves tiny"


async def test_cli_status_and_get_print_the_job_as_rest_does(
    http: httpx.AsyncClient, miner: ScriptedMiner, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = await http.post("/v1/jobs", json={"prompt": "wait", "model": "tiny", "queue_if_unavailable": True})
    running = (await http.post("/v1/jobs", json={"prompt": "Say hi", "params": {"max_tokens": 2}})).json()
    await run_to_completion(miner, (await assigned(miner)).job_id, "Hi", "!")
    await job_in_state(http, running["job_id"], "completed")
    for job_id in (pending.json()["job_id"], running["job_id"]):
        rest = (await http.get(f"/v1/jobs/{job_id}")).json()
        for verb in ("status", "get"):
            printed = await _cli_json(capsys, verb, job_id, "--coordinator", target, "--api-key", keys.client)
            assert printed == _subset(rest, printed), f"aitbc {verb} {job_id}"
            assert None not in _leaves(printed)


async def test_keys_over_rest(http: httpx.AsyncClient, gateway: str, keys: Keys) -> None:
    listed = (await http.get("/v1/keys")).json()["keys"]
    [own] = listed
    assert (own["role"], own["owner_id"]) == ("client", own["key_id"])
    assert "last_used_at" in own
    revoked = await http.post(f"/v1/keys/{own['key_id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"]
    after = await http.get("/v1/jobs")
    assert (after.status_code, after.json()["error_code"]) == (401, "UNAUTHENTICATED")


async def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert await asyncio.to_thread(main, list(args)) == 0
    return json.loads(capsys.readouterr().out)


def _subset(rest: Any, printed: Any) -> Any:
    """REST's value restricted to the keys the CLI printed (it prints fewer fields, never other ones)."""
    if isinstance(printed, dict) and isinstance(rest, dict):
        return {key: _subset(rest.get(key), value) for key, value in printed.items()}
    if isinstance(printed, float) and isinstance(rest, float):
        return printed if rest == pytest.approx(printed) else rest
    return rest


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [data]
