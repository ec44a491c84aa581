"""The llama.cpp backend with the real SmolLM2-135M-Instruct GGUF on the CPU."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import pytest

from miner.backends.base import ChatMessage, GenerationRequest, InvalidRequestError, TokenChunk
from miner.model_files import SMOLLM2_MODEL_ID, ModelFileNotFoundError, find_smollm2_gguf

from .fakes import STEP_TIMEOUT

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed; run `make install`")
try:
    find_smollm2_gguf()
except ModelFileNotFoundError as missing:
    pytest.skip(str(missing), allow_module_level=True)

import llama_cpp

from miner.backends.llama_cpp import LlamaCppBackend, _Detokenizer

pytestmark = pytest.mark.llama

# Real inference on a CPU shared with the rest of the suite: a step is waited for longer than a fake's.
MODEL_STEP_TIMEOUT = 6 * STEP_TIMEOUT

PROMPT = "Name three colors."


def request(**changes: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "prompt": PROMPT,
        "model": SMOLLM2_MODEL_ID,
        "max_tokens": 16,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    return GenerationRequest(**(fields | changes))


async def generate(backend: LlamaCppBackend, req: GenerationRequest) -> list[TokenChunk]:
    async with contextlib.aclosing(backend.generate(req)) as chunks:
        return [chunk async for chunk in chunks]


def text_of(chunks: list[TokenChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    # Loaded once for the module. Each test runs in an event loop of its own, which the backend does not mind: it
    # looks up the running loop per generation. One thread: ggml's threads spin while they wait for each other,
    # and on a busy 2-core machine two of them can take a minute over what one does in a second.
    loaded = LlamaCppBackend(n_threads=1)
    yield loaded
    asyncio.run(loaded.close())


def test_advertises_one_model_and_one_slot(backend: LlamaCppBackend) -> None:
    assert (backend.backend_name, list(backend.models), backend.max_concurrency, backend.gpus()) == (
        "llama.cpp",
        [SMOLLM2_MODEL_ID],
        1,
        [],
    )


async def test_generates_real_tokens(backend: LlamaCppBackend) -> None:
    chunks = await generate(backend, request(temperature=0.7, top_p=0.9))

    assert text_of(chunks).strip()
    assert 0 < sum(chunk.token_count for chunk in chunks) <= 16
    assert chunks[-1].finish_reason in ("stop", "length")
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])
    assert await backend.count_prompt_tokens(request()) > len(PROMPT.split())


async def test_temperature_zero_is_deterministic(backend: LlamaCppBackend) -> None:
    first = text_of(await generate(backend, request(max_tokens=24)))
    second = text_of(await generate(backend, request(max_tokens=24)))

    assert first == second


async def test_resumed_generation_continues_after_the_earlier_text(backend: LlamaCppBackend) -> None:
    full = await generate(backend, request(max_tokens=24))
    earlier = full[:4]
    resume_tokens = sum(chunk.token_count for chunk in earlier)

    resumed = await generate(backend, request(max_tokens=24, resume_text=text_of(earlier), resume_tokens=resume_tokens))

    assert text_of(earlier) + text_of(resumed) == text_of(full)
    assert sum(chunk.token_count for chunk in resumed) <= 24 - resume_tokens


async def test_stop_string_ends_generation_before_it(backend: LlamaCppBackend) -> None:
    unstopped = text_of(await generate(backend, request(max_tokens=24)))
    assert "\n" in unstopped

    chunks = await generate(backend, request(max_tokens=24, stop=("\n",)))

    assert text_of(chunks) == unstopped[: unstopped.index("\n")]
    assert chunks[-1].finish_reason == "stop"


async def test_conversation_and_raw_prompts(backend: LlamaCppBackend) -> None:
    conversation = (ChatMessage("system", "Answer in one word."), ChatMessage("user", "What color is the sky?"))
    chat = await generate(backend, request(prompt="", messages=conversation, max_tokens=8))
    raw = await generate(backend, request(prompt="The capital of France is", raw=True, max_tokens=8))

    assert text_of(chat).strip()
    assert "Paris" in text_of(raw)
    assert await backend.count_prompt_tokens(request(prompt="Hello", raw=True)) == 1


async def test_cancel_stops_generation_and_frees_the_model(backend: LlamaCppBackend) -> None:
    # Left alone this would run for the whole context, half a minute on a small CPU.
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.generate(request(prompt="Write a very long story about a dragon.", max_tokens=2000)):
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), MODEL_STEP_TIMEOUT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, MODEL_STEP_TIMEOUT)

    # The one model thread is free again: the next job runs to its end.
    chunks = await asyncio.wait_for(generate(backend, request(max_tokens=4)), MODEL_STEP_TIMEOUT)
    assert sum(chunk.token_count for chunk in chunks) == 4


async def test_bad_requests_are_invalid(backend: LlamaCppBackend) -> None:
    with pytest.raises(InvalidRequestError, match="not served here"):
        await generate(backend, request(model="llama3.2"))
    with pytest.raises(InvalidRequestError, match="context holds 2048"):
        await backend.count_prompt_tokens(request(prompt="word " * 3000))


def test_tokens_longer_than_32_bytes_decode_whole() -> None:
    # Llama.detokenize garbles pieces longer than its 32-byte buffer, and SmolLM2 has pieces of up to 81 bytes.
    vocab_only = llama_cpp.Llama(str(find_smollm2_gguf()), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(vocab_only.model)
    assert vocab is not None
    buffer = ctypes.create_string_buffer(1024)

    def piece(token: int) -> bytes:
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:size]

    longest = max(range(vocab_only.n_vocab()), key=lambda token: len(piece(token)))
    assert len(piece(longest)) > 32
    detokenizer = _Detokenizer(vocab)
    assert detokenizer.feed(longest) + detokenizer.flush() == piece(longest).decode()
    vocab_only.close()
