"""OpenAI compatibility as vLLM and Ollama users expect it: /v1/models, error bodies, common parameters, CORS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from gateway.limits import GatewayLimits
from gateway.options import GatewayOptions
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, assigned, run_to_completion, running_gateway
from tests.support.scripted_miner import ScriptedMiner

SERVED = "llama-3.2-1b-instruct"  # the catalog entry whose alias MODEL the scripted miner advertises
UNSERVED = "smollm2-135m-instruct"
CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def client(gateway: str, keys: Keys) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"http://{gateway}/v1", api_key=keys.client, max_retries=0) as openai_client:
        yield openai_client


async def test_models_lists_what_can_run_now_and_retrieves_one(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    listed = [model.id async for model in client.models.list()]
    assert listed == [SERVED]
    model = await client.models.retrieve(SERVED)
    assert (model.id, model.object, model.owned_by) == (SERVED, "model", "aitbc")
    assert (await client.models.retrieve(MODEL)).id == SERVED  # by an alias, as the miner named it
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.models.retrieve("gpt-7")
    assert unknown.value.message.endswith("The model `gpt-7` does not exist")
    assert (unknown.value.code, unknown.value.param, unknown.value.type) == (
        "model_not_found",
        "model",
        "invalid_request_error",
    )
    with pytest.raises(openai.NotFoundError) as idle:
        await client.models.retrieve(UNSERVED)
    assert "no online miner serves it now" in idle.value.message


async def test_models_errors_are_in_openai_shape(gateway: str) -> None:
    async with AsyncOpenAI(base_url=f"http://{gateway}/v1", api_key="aitbc_wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as caught:
            await stranger.models.list()
    assert caught.value.code == "unauthenticated"
    assert caught.value.message  # the message surfaces, not "(no body)"
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        for path in ("/v1/models", "/v1/models/x", "/v1/chat/completions"):
            response = await (anonymous.get(path) if "models" in path else anonymous.post(path, json={}))
            assert response.status_code == 401
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert (error["type"], error["code"]) == ("authentication_error", "unauthenticated")
            assert "X-Api-Key" in error["message"]


async def test_commonly_sent_parameters_are_accepted(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    request = asyncio.create_task(
        client.chat.completions.create(
            model=MODEL,
            messages=CHAT,
            max_tokens=7,
            seed=42,
            tool_choice="none",
            parallel_tool_calls=True,
            metadata={"team": "search"},
            user="user-1",
            logit_bias={},
            extra_body={"top_k": 40},
        )
    )
    assignment = await assigned(miner)
    assert assignment.params.max_tokens == 7
    await run_to_completion(miner, assignment.job_id, "ok")
    assert (await request).choices[0].message.content == "ok"


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tools="),
        ({"tool_choice": "required"}, "tool_choice", 'only "none"'),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias="),
        ({"n": 2}, "n", "only 1"),
        ({"seed": "42"}, "seed", "seed must be an integer"),
        ({"top_k": -2}, "top_k", "top_k must be an integer >= -1"),
        ({"metadata": {"k": 1}}, "metadata", "metadata must be an object"),
    ],
)
async def test_what_would_change_the_answer_is_refused_with_a_message(
    client: AsyncOpenAI, extra: dict[str, object], param: str, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=CHAT, extra_body=extra)
    assert caught.value.param == param
    assert message in caught.value.message


async def test_with_openai_queue_requests_wait_and_every_text_model_is_listed(target: str, keys: Keys) -> None:
    options = GatewayOptions(openai_queue=True)
    async with (
        running_gateway(target, GatewayLimits(keepalive_seconds=0.05), options) as address,
        AsyncOpenAI(base_url=f"http://{address}/v1", api_key=keys.client, max_retries=0) as client,
        httpx.AsyncClient(base_url=f"http://{address}", headers={"X-Api-Key": keys.client}) as http,
    ):
        assert UNSERVED in [model.id async for model in client.models.list()]
        body = {"model": UNSERVED, "messages": CHAT, "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            opening = json.loads((await anext(lines)).removeprefix("data: "))
            assert opening["choices"][0]["delta"]["role"] == "assistant"
            # Queued with no miner, the stream stays alive with comments.
            assert [await anext(lines) for _ in range(3)] == ["", ": keepalive", ""]


async def test_without_openai_queue_an_unserved_model_is_503(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model=UNSERVED, messages=CHAT)
    assert (caught.value.status_code, caught.value.code) == (503, "no_eligible_miner")


async def test_cors_is_off_by_default_and_on_for_the_configured_origins(target: str, http: httpx.AsyncClient) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    closed = await http.options("/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    options = GatewayOptions(cors_origins=("https://app.example",))
    async with running_gateway(target, options=options) as address, httpx.AsyncClient() as browser:
        allowed = await browser.options(f"http://{address}/v1/chat/completions", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = await browser.options(
            f"http://{address}/v1/chat/completions", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.status_code == 400
        models = await browser.get(f"http://{address}/v1/models", headers={"Origin": "https://app.example"})
        assert models.headers["access-control-allow-origin"] == "https://app.example"
