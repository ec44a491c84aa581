"""The synthetic test and benchmark backend."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import pytest

from miner.backends.base import ChatMessage, GenerationRequest, InvalidRequestError, TokenChunk
from miner.backends.synthetic import SyntheticBackend, synthetic_text

from .fakes import STEP_TIMEOUT

PROMPT = "Write a haiku about gRPC"


def request(**changes: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "prompt": PROMPT,
        "model": "synthetic",
        "max_tokens": 20,
        "temperature": 0.7,
        "top_p": 0.9,
    }
    return GenerationRequest(**(fields | changes))


async def generate(backend: SyntheticBackend, req: GenerationRequest) -> list[TokenChunk]:
    async with contextlib.aclosing(backend.generate(req)) as chunks:
        return [chunk async for chunk in chunks]


def text_of(chunks: list[TokenChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


async def test_output_depends_only_on_the_prompt() -> None:
    backend = SyntheticBackend(tokens_per_second=0)

    first = await generate(backend, request(temperature=0.0))
    second = await generate(backend, request(temperature=2.0, top_p=0.1))
    other = await generate(backend, request(prompt="Something else entirely"))

    assert text_of(first) == text_of(second) == synthetic_text(PROMPT, 20)
    assert text_of(other) != text_of(first)


async def test_one_token_per_word_and_max_tokens_respected() -> None:
    chunks = await generate(SyntheticBackend(tokens_per_second=0), request(max_tokens=7))

    assert [chunk.token_count for chunk in chunks] == [1] * 7
    assert all(chunk.text.endswith(" ") and chunk.text.count(" ") == 1 for chunk in chunks)
    assert [chunk.finish_reason for chunk in chunks] == [None] * 6 + ["length"]


@pytest.mark.parametrize("resume_tokens", [0, 1, 9, 19, 20])
async def test_resumed_output_is_the_rest_of_an_uninterrupted_run(resume_tokens: int) -> None:
    backend = SyntheticBackend(tokens_per_second=0)
    full = text_of(await generate(backend, request()))
    earlier = synthetic_text(PROMPT, resume_tokens)

    resumed = await generate(backend, request(resume_text=earlier, resume_tokens=resume_tokens))

    assert earlier + text_of(resumed) == full
    assert sum(chunk.token_count for chunk in resumed) == 20 - resume_tokens
    assert resumed[-1].finish_reason == "length"


async def test_stop_string_cuts_the_output_before_it() -> None:
    full = synthetic_text(PROMPT, 20)
    stop = full.split()[4] + " " + full.split()[5][:2]

    chunks = await generate(SyntheticBackend(tokens_per_second=0), request(stop=("no such text", stop)))

    assert text_of(chunks) == full[: full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert sum(chunk.token_count for chunk in chunks) == 6


async def test_conversation_seeds_the_output_like_a_prompt() -> None:
    backend = SyntheticBackend(tokens_per_second=0)
    conversation = (ChatMessage("system", "Be brief."), ChatMessage("user", PROMPT))

    chunks = await generate(backend, request(prompt="", messages=conversation))

    assert text_of(chunks) == synthetic_text("system: Be brief.\nuser: " + PROMPT, 20)
    assert await backend.count_prompt_tokens(request(prompt="", messages=conversation)) == 9


async def test_paces_tokens_at_the_configured_rate() -> None:
    # A lower bound only: the backend must never run ahead of its rate; how far behind a busy machine makes it
    # is for benchmarks.
    backend = SyntheticBackend(tokens_per_second=200, first_token_delay=0.05)
    loop = asyncio.get_running_loop()

    started = loop.time()
    chunks = await generate(backend, request(max_tokens=11))

    assert len(chunks) == 11
    assert loop.time() - started >= 0.05 + 10 / 200 - 1e-3


@pytest.mark.parametrize("rate", [0.0, math.inf])
async def test_zero_or_infinite_rate_is_unpaced(rate: float) -> None:
    chunks = await asyncio.wait_for(
        generate(SyntheticBackend(tokens_per_second=rate), request(max_tokens=8192)), STEP_TIMEOUT
    )

    assert len(chunks) == 8192


async def test_cancel_stops_generation_promptly() -> None:
    # The next token is due in 100 seconds: only a prompt stop lets the task end within the step deadline.
    backend = SyntheticBackend(tokens_per_second=0.01)
    received: list[TokenChunk] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for chunk in backend.generate(request()):
            received.append(chunk)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), STEP_TIMEOUT)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, STEP_TIMEOUT)
    assert len(received) == 1


async def test_unknown_model_is_an_invalid_request() -> None:
    backend = SyntheticBackend(models=["a", "b"])

    with pytest.raises(InvalidRequestError, match="'c' is not served here"):
        await backend.count_prompt_tokens(request(model="c"))
    with pytest.raises(InvalidRequestError, match="'c' is not served here"):
        await generate(backend, request(model="c"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
        ({"temperature": math.nan}, "temperature must be between 0 and 2"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"resume_tokens": 21}, "resume_tokens must be between 0 and max_tokens"),
        ({"raw": True, "messages": (ChatMessage("user", "hi"),)}, "raw applies to a prompt"),
        ({"stop": ("",)}, "stop strings must not be empty"),
    ],
)
def test_request_validation_names_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        request(**changes)
