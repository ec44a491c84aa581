"""The ExLlamaV2 backend on a fake dynamic generator (`exllamav2_fakes`): everything but the GPU."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from miner.backends.base import ChatMessage, InvalidRequestError, TokenChunk
from miner.backends.exllamav2 import ExLlamaV2Backend
from miner.backends.exllamav2_loop import EngineError
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import (
    CachePlan,
    check_model_dir,
    eos_token_ids,
    sampler_settings,
)
from miner.backends.registry import create_backend
from miner.model_files import ModelFileNotFoundError

from .exllamav2_fakes import (
    END_OF_TURN,
    EOS,
    HELD,
    SAMPLING_PARAMETERS,
    TEMPLATE,
    UNPAGED,
    FakeGenerator,
    FakeModel,
    FakeSamplerSettings,
    _collect,
    generate,
    request,
    running,
    text_of,
    tokens_of,
)
from .fakes import STEP_TIMEOUT

# Importing.


def test_importing_the_backend_loads_neither_torch_nor_exllamav2() -> None:
    code = (
        "import sys, miner.backends.exllamav2, miner.backends.registry, miner.main\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'exllamav2'}))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert imported.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("exllamav2") is not None, reason="exllamav2 is installed here")
def test_without_exllamav2_the_backend_says_what_to_install(model_dir: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"needs exllamav2 and a CUDA build of torch; docs/gpu-miner\.md"):
        create_backend("exllamav2", {"model_dir": str(model_dir)})


# Sampling parameters.


def test_every_sampling_parameter_is_passed_and_none_is_left_to_exllamav2_defaults() -> None:
    kwargs: dict[str, Any] = sampler_settings(request(temperature=0.7, top_p=0.9)).as_kwargs()

    assert set(kwargs) == SAMPLING_PARAMETERS
    assert FakeSamplerSettings(**kwargs) == FakeSamplerSettings(
        # Sampling as asked, and every filter, penalty and bias off, where ExLlamaV2's defaults turn some on.
        temperature=0.7,
        top_p=0.9,
        top_k=0,
        token_repetition_penalty=1.0,
    )


def test_temperature_zero_is_greedy() -> None:
    settings = sampler_settings(request(temperature=0.0, top_p=0.5))

    # Temperature 1 keeps ExLlamaV2 from dividing by zero; top_k 1 is the greedy choice itself.
    assert (settings.temperature, settings.top_k, settings.top_p) == (1.0, 1, 1.0)
    assert settings.token_repetition_penalty == 1.0


async def test_jobs_carry_the_mapped_settings(model_dir: Path) -> None:
    async with running(model_dir, ["Hi", EOS]) as (backend, model):
        await generate(backend, request(temperature=0.5, top_p=0.8))
        await generate(backend, request(temperature=0.0))

    sampled, greedy = model.generator.enqueued
    assert (sampled.gen_settings.temperature, sampled.gen_settings.top_k, sampled.gen_settings.top_p) == (0.5, 0, 0.8)
    assert (greedy.gen_settings.temperature, greedy.gen_settings.top_k) == (1.0, 1)
    assert set(sampled.settings_kwargs) == SAMPLING_PARAMETERS


# Stopping.


def test_eos_tokens_come_from_the_tokenizer_config_and_generation_config(model_dir: Path) -> None:
    assert eos_token_ids(model_dir, tokenizer_eos=7) == {7, EOS, END_OF_TURN}

    (model_dir / "generation_config.json").unlink()
    assert eos_token_ids(model_dir, tokenizer_eos=None) == {EOS}

    (model_dir / "config.json").write_text(json.dumps({"eos_token_id": [EOS, END_OF_TURN]}))
    assert eos_token_ids(model_dir, tokenizer_eos=None) == {EOS, END_OF_TURN}

    (model_dir / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="names no EOS token"):
        eos_token_ids(model_dir, tokenizer_eos=None)


@pytest.mark.parametrize("eos", [EOS, END_OF_TURN])
async def test_an_eos_token_ends_the_generation_uncounted(model_dir: Path, eos: int) -> None:
    async with running(model_dir, ["Hello", " world", eos, " never"]) as (backend, _):
        chunks = await generate(backend, request())

    assert text_of(chunks) == "Hello world"
    assert tokens_of(chunks) == 2
    assert chunks[-1].finish_reason == "stop"
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])


async def test_max_tokens_ends_the_generation_with_length(model_dir: Path) -> None:
    async with running(model_dir, ["a", "b", "c"], repeat=True) as (backend, model):
        chunks = await generate(backend, request(max_tokens=5))

    assert (text_of(chunks), tokens_of(chunks), chunks[-1].finish_reason) == ("abcab", 5, "length")
    assert model.generator.enqueued[0].max_new_tokens == 5


async def test_a_stop_string_ends_the_generation_and_frees_the_job(model_dir: Path) -> None:
    async with running(model_dir, ["Hello", " wor", "ld", "\n", "User", ":", " more"], repeat=True) as (backend, model):
        chunks = await generate(backend, request(max_tokens=100, stop=("\nUser:",)))

    assert text_of(chunks) == "Hello world"
    assert chunks[-1].finish_reason == "stop"
    # Every token sampled is paid for, the stop string's included.
    assert tokens_of(chunks) == 6
    assert model.generator.cancelled == model.generator.enqueued


async def test_text_held_back_for_a_stop_string_is_released_at_eos(model_dir: Path) -> None:
    # ExLlamaV2 would drop "!" here: it holds it as the start of "!!" and ends on the EOS token.
    async with running(model_dir, ["Hi", "!", EOS]) as (backend, _):
        chunks = await generate(backend, request(stop=("!!",)))

    assert (text_of(chunks), tokens_of(chunks), chunks[-1].finish_reason) == ("Hi!", 2, "stop")


async def test_tokens_of_a_held_back_character_are_counted_with_its_text(model_dir: Path) -> None:
    async with running(model_dir, ["a", HELD, "é", HELD, EOS]) as (backend, _):
        chunks = await generate(backend, request())

    assert [(chunk.text, chunk.token_count) for chunk in chunks] == [("a", 1), ("é", 2), ("", 1)]
    assert chunks[-1].finish_reason == "stop"


async def test_counts_and_timings_come_from_the_final_result(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="miner.backends.exllamav2")
    async with running(model_dir, ["one", " two", " three", EOS]) as (backend, _):
        chunks = await generate(backend, request(prompt="Count to three", raw=True))

    assert tokens_of(chunks) == 3
    # The fake's prompt is a BOS and a token per word; its timings are fixed.
    assert "4 prompt tokens (0 cached), 4 new (stop_token); queued 0.001s, prefill 0.020s, generation 0.300s" in (
        caplog.text
    )


# Cancelling.


async def test_cancel_frees_the_job_at_once_and_ends_the_stream(model_dir: Path) -> None:
    async with running(model_dir, ["word "], repeat=True) as (backend, model):
        first_chunk = asyncio.Event()

        async def consume() -> None:
            async for _ in backend.generate(request(max_tokens=100_000)):
                first_chunk.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_chunk.wait(), STEP_TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, STEP_TIMEOUT)

        # Already out of the generator when the cancelled task has finished, not at some later point.
        assert model.generator.cancelled == model.generator.enqueued
        assert not model.generator.active

        # The generator serves the next job.
        assert text_of(await generate(backend, request(max_tokens=2))) == "word word "


async def test_a_consumer_that_stops_reading_frees_the_job(model_dir: Path) -> None:
    async with running(model_dir, ["word "], repeat=True) as (backend, model):
        async with contextlib.aclosing(backend.generate(request(max_tokens=100_000))) as chunks:
            await asyncio.wait_for(anext(chunks), STEP_TIMEOUT)

        assert model.generator.cancelled == model.generator.enqueued


# Prompts.


async def test_chat_prompts_use_the_models_template_and_raw_prompts_do_not(model_dir: Path) -> None:
    conversation = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"))
    async with running(model_dir, [EOS]) as (backend, model):
        await generate(backend, request(prompt="Say hello"))
        await generate(backend, request(prompt="", messages=conversation))
        await generate(backend, request(prompt="Once upon", raw=True))

    assert model.encoded == [
        ("<s><|user|> Say hello <|end|> <|assistant|>", False),
        ("<s><|system|> Be brief. <|end|> <|user|> Hi <|end|> <|assistant|>", False),
        ("Once upon", True),
    ]


async def test_a_resumed_generation_continues_after_the_earlier_text(model_dir: Path) -> None:
    async with running(model_dir, [" three", EOS]) as (backend, model):
        chunks = await generate(backend, request(max_tokens=10, resume_text="one two", resume_tokens=2))
        prompt_tokens = await backend.count_prompt_tokens(
            request(max_tokens=10, resume_text="one two", resume_tokens=2)
        )

    assert model.encoded[0] == ("<s><|user|> Say hello <|end|> <|assistant|>one two", False)
    assert model.generator.enqueued[0].max_new_tokens == 8
    assert text_of(chunks) == " three"
    # The prompt is what the client sent, without the text of the earlier attempt.
    assert prompt_tokens == 5


async def test_the_output_budget_stops_at_the_context(model_dir: Path) -> None:
    plan = CachePlan(paged=False, max_seq_len=10, cache_tokens=256, batch_size=1)
    async with running(model_dir, ["x"], repeat=True, plan=plan) as (backend, model):
        chunks = await generate(backend, request(prompt="one two three four five six", raw=True, max_tokens=50))
        with pytest.raises(InvalidRequestError, match="context holds 10 in all"):
            await backend.count_prompt_tokens(request(prompt="word " * 9, raw=True))
        nothing_left = await generate(backend, request(prompt="word " * 12, raw=True))

    # BOS and six words leave three tokens of the ten.
    assert model.generator.enqueued[0].max_new_tokens == 3
    assert (tokens_of(chunks), chunks[-1].finish_reason) == (3, "length")
    assert nothing_left == [TokenChunk("", 0, "length")]
    assert len(model.generator.enqueued) == 1


async def test_bad_requests_are_invalid(model_dir: Path) -> None:
    # A model that takes raw prompts without BOS, so that an empty one is no tokens at all.
    config = {"add_bos_token": False, "bos_token": "<s>", "chat_template": TEMPLATE}
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    async with running(model_dir, [EOS]) as (backend, model):
        with pytest.raises(InvalidRequestError, match="not served here"):
            await generate(backend, request(model="other"))
        with pytest.raises(InvalidRequestError, match="the prompt is empty"):
            await generate(backend, request(prompt="", raw=True))
    assert not model.generator.enqueued


def test_prompt_format_reads_the_model_folder(model_dir: Path) -> None:
    config = {"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "chat"}]}
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    assert PromptFormat.from_model_dir(model_dir).prompt(request()).text == "chat"
    # No BOS token: raw prompts start without one.
    assert PromptFormat.from_model_dir(model_dir).prompt(request(raw=True)).add_bos is False

    (model_dir / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False, "bos_token": "<s>"}))
    (model_dir / "chat_template.jinja").write_text("{{ bos_token }}{{ messages[0].content }}")
    prompt_format = PromptFormat.from_model_dir(model_dir)
    assert prompt_format.prompt(request()).text == "<s>Say hello"
    assert prompt_format.prompt(request(raw=True)).add_bos is False

    (model_dir / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="has no chat template"):
        PromptFormat.from_model_dir(model_dir)


def test_a_template_that_rejects_the_conversation_makes_the_request_invalid() -> None:
    strict = "{% if messages[0].role != 'user' %}{{ raise_exception('must start with user') }}{% endif %}ok"
    prompt_format = PromptFormat(strict, bos_token="", eos_token="", raw_bos=False)

    assert prompt_format.prompt(request()).text == "ok"
    with pytest.raises(InvalidRequestError, match="must start with user"):
        prompt_format.prompt(request(prompt="", messages=(ChatMessage("assistant", "Hi"),)))


def test_a_model_folder_needs_config_and_tokenizer_json(model_dir: Path) -> None:
    check_model_dir(model_dir)
    (model_dir / "tokenizer.json").unlink()
    with pytest.raises(ModelFileNotFoundError, match=r"has no tokenizer\.json"):
        check_model_dir(model_dir)


# Failures.


async def test_an_engine_failure_fails_the_job_with_a_clear_error(model_dir: Path) -> None:
    async with running(model_dir, ["ok", EOS]) as (backend, model):
        model.generator.fail_iterate = RuntimeError("CUDA error: an illegal memory access was encountered")
        with pytest.raises(EngineError, match=r"ExLlamaV2 failed: RuntimeError.*illegal memory access"):
            await generate(backend, request())
        assert model.generator.cancelled == model.generator.enqueued

        model.generator.fail_enqueue = AssertionError("Job requires 9 pages (only 8 available)")
        with pytest.raises(EngineError, match=r"did not take the job: AssertionError.*requires 9 pages"):
            await generate(backend, request())
        model.generator.fail_enqueue = None

        assert text_of(await generate(backend, request())) == "ok"


async def test_close_fails_running_jobs_and_frees_the_model(model_dir: Path) -> None:
    model = FakeModel(FakeGenerator(["word "], repeat=True), model_dir, UNPAGED)
    backend = ExLlamaV2Backend(model)
    chunks = backend.generate(request(max_tokens=100_000))
    await asyncio.wait_for(anext(chunks), STEP_TIMEOUT)

    # The generator thread waits for the consumer: reading on lets it reach the close.
    closing = asyncio.create_task(backend.close())
    with pytest.raises(EngineError, match="closed while the job ran"):
        await asyncio.wait_for(_collect(chunks), STEP_TIMEOUT)
    await asyncio.wait_for(closing, STEP_TIMEOUT)
    assert model.closed
