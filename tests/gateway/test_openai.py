"""The official `openai` package against the gateway: completions and chat, streaming and not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from aitbc.v1 import miner_pb2
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, assigned, cancel_acknowledged, job_in_state, run_to_completion
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
async def client(gateway: str, keys: Keys) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"http://{gateway}/v1", api_key=keys.client, max_retries=0) as openai_client:
        yield openai_client


async def fail(miner: ScriptedMiner, job_id: str) -> None:
    failed = miner_pb2.JobFailed(job_id=job_id, attempt=1, error="out of memory", retryable=False)
    await miner.send(miner_pb2.ConnectRequest(failed=failed))


async def test_completion(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    request = asyncio.create_task(
        client.completions.create(
            model=MODEL, prompt="Once upon a time", max_tokens=20, temperature=0.2, top_p=0.5, stop="\n"
        )
    )
    assignment = await assigned(miner)
    assert (assignment.prompt, assignment.raw, assignment.model) == ("Once upon a time", True, MODEL)
    assert (assignment.params.max_tokens, list(assignment.params.stop)) == (20, ["\n"])
    assert assignment.params.temperature == pytest.approx(0.2)
    assert assignment.params.top_p == pytest.approx(0.5)
    await run_to_completion(miner, assignment.job_id, " there", " was")
    completion = await request

    assert completion.id == f"cmpl-{assignment.job_id}"
    assert (completion.object, completion.model) == ("text_completion", "llama-3.2-1b-instruct")
    assert completion.created > 0
    [choice] = completion.choices
    assert (choice.index, choice.text, choice.finish_reason) == (0, " there was", "length")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        5,
        2,
        7,
    )


async def test_streaming_completion_with_usage(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    stream = await client.completions.create(
        model=MODEL, prompt="1, 2, 3,", stream=True, stream_options={"include_usage": True}
    )
    assignment = await assigned(miner)
    await run_to_completion(miner, assignment.job_id, " 4", ",", " 5")
    chunks = [chunk async for chunk in stream]

    assert {chunk.id for chunk in chunks} == {f"cmpl-{assignment.job_id}"}
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == " 4, 5"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "length"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 8


async def test_chat_completion(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    request = asyncio.create_task(
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]},
            ],
            max_completion_tokens=5,
        )
    )
    assignment = await assigned(miner)
    assert [(m.role, m.content) for m in assignment.messages] == [("system", "Be brief."), ("user", "Say hi")]
    assert (assignment.raw, assignment.params.max_tokens) == (False, 5)
    await run_to_completion(miner, assignment.job_id, "Hi", "!")
    completion = await request

    assert completion.id == f"chatcmpl-{assignment.job_id}"
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert (choice.message.role, choice.message.content, choice.finish_reason) == ("assistant", "Hi!", "length")
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


async def test_streaming_chat_completion(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assignment = await assigned(miner)
    await run_to_completion(miner, assignment.job_id, "one", " two")
    chunks = [chunk async for chunk in stream]

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert content == ["one", " two"]
    finishing = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert [chunk.choices[0].finish_reason for chunk in finishing] == ["length"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 2)


async def test_streaming_without_usage_has_no_usage_key(gateway: str, keys: Keys, miner: ScriptedMiner) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers = {"Authorization": f"Bearer {keys.client}"}
    async with (
        httpx.AsyncClient(base_url=f"http://{gateway}") as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assignment = await assigned(miner)
        await run_to_completion(miner, assignment.job_id, "y")
        lines = [line async for line in response.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all('"usage"' not in line for line in lines)


async def test_failed_job_is_an_openai_error(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    request = asyncio.create_task(client.completions.create(model=MODEL, prompt="boom"))
    await fail(miner, (await assigned(miner)).job_id)
    with pytest.raises(openai.InternalServerError) as caught:
        await request
    assert caught.value.code == "job_failed"
    assert "out of memory" in caught.value.message

    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "boom"}], stream=True
    )
    await fail(miner, (await assigned(miner)).job_id)
    with pytest.raises(openai.APIError) as streamed:
        async for _ in stream:
            pass
    assert "out of memory" in streamed.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"temperature": 5}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
async def test_unsupported_or_invalid_parameters_are_400(
    client: AsyncOpenAI, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=extra
        )
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


async def test_neutral_values_of_unsupported_parameters_are_accepted(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    request = asyncio.create_task(
        client.completions.create(model=MODEL, prompt=["only one"], n=1, echo=False, presence_penalty=0)
    )
    assignment = await assigned(miner)
    assert assignment.prompt == "only one"
    await run_to_completion(miner, assignment.job_id, "ok")
    assert (await request).choices[0].text == "ok"


async def test_wrong_key_is_an_authentication_error(gateway: str) -> None:
    async with AsyncOpenAI(base_url=f"http://{gateway}/v1", api_key="aitbc_wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as caught:
            await stranger.completions.create(model=MODEL, prompt="hi")
    assert caught.value.code == "unauthenticated"


async def test_models_list(client: AsyncOpenAI, miner: ScriptedMiner) -> None:
    models = {model.id: model async for model in client.models.list()}
    served = models["llama-3.2-1b-instruct"]
    assert (served.object, served.owned_by) == ("model", "aitbc")
    # In the catalog, but no online miner serves it: a request for it could not run now.
    assert "smollm2-135m-instruct" not in models


async def test_disconnecting_from_a_stream_cancels_the_job(
    client: AsyncOpenAI, http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "long story"}], stream=True
    )
    assignment = await assigned(miner)
    await miner.started(assignment.job_id, 1)
    await miner.tokens(assignment.job_id, 1, "Once")
    async for chunk in stream:
        if chunk.choices[0].delta.content == "Once":
            break
    await stream.close()
    await cancel_acknowledged(miner, assignment.job_id, completion_tokens=1)
    job = await job_in_state(http, assignment.job_id, "canceled")
    assert job["result"] == "Once"


async def test_disconnecting_from_a_waiting_request_cancels_the_job(
    client: AsyncOpenAI, http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    request = asyncio.create_task(client.completions.create(model=MODEL, prompt="never read"))
    assignment = await assigned(miner)
    request.cancel()
    await cancel_acknowledged(miner, assignment.job_id, completion_tokens=0)
    await job_in_state(http, assignment.job_id, "canceled")
