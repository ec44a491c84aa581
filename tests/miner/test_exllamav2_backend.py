"""The ExLlamaV2 backend on a fake dynamic generator: everything but the GPU.

`FakeGenerator` keeps the contract of exllamav2 0.3.2's ExLlamaV2DynamicGenerator as the backend relies on it:
jobs start up to the batch size, each iterate() samples one token per running job, text ExLlamaV2 holds back as
half a character comes later with its tokens, a stop token ends a job without text, and cancel() takes a job
out. `FakeSamplerSettings` is 0.3.2's ExLlamaV2Sampler.Settings: its fields and its defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from miner.backends.base import ChatMessage, GenerationRequest, GpuInfo, InvalidRequestError, TokenChunk
from miner.backends.exllamav2 import ExLlamaV2Backend
from miner.backends.exllamav2_loop import EngineError, JobSpec
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import (
    SAMPLER_STATE_FIELDS,
    CachePlan,
    check_model_dir,
    eos_token_ids,
    plan_cache,
    sampler_settings,
)
from miner.backends.exllamav2_types import TokenIds
from miner.backends.registry import create_backend
from miner.main import add_miner_arguments, config_from_args
from miner.model_files import ModelFileNotFoundError

from .fakes import STEP_TIMEOUT

MODEL_ID = "fake-llama"
EOS = 2
END_OF_TURN = 9
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|> {{ m.content }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# A token whose text ExLlamaV2 holds back (half of a character): it comes out with the next token's text.
HELD = None
ScriptItem = str | int | None


@dataclass
class FakeSamplerSettings:
    """ExLlamaV2Sampler.Settings of exllamav2 0.3.2, with its defaults, which are not neutral."""

    token_repetition_penalty: float = 1.025
    token_repetition_range: int = -1
    token_repetition_decay: int = 0
    token_frequency_penalty: float = 0.0
    token_presence_penalty: float = 0.0
    temperature: float = 0.8
    smoothing_factor: float = 0.0
    min_temp: float = 0
    max_temp: float = 0.0
    temp_exponent: float = 1.0
    top_k: int = 50
    top_p: float = 0.8
    top_a: float = 0.0
    min_p: float = 0
    tfs: float = 0
    typical: float = 0
    skew: float = 0
    temperature_last: bool = False
    mirostat: bool = False
    mirostat_tau: float = 1.5
    mirostat_eta: float = 0.1
    mirostat_mu: float | None = None
    token_bias: object = None
    cfg_scale: float | None = None
    post_sampling_hooks: list[object] = field(default_factory=list)
    dry_allowed_length: int = 2
    dry_base: float = 1.75
    dry_multiplier: float = 0.0
    dry_sequence_breakers: set[int] | None = None
    dry_range: int = 0
    dry_max_ngram: int = 20
    ngram_trie: dict[int, object] | None = None
    ngram_index: int = 0
    ngram_history: list[int] = field(default_factory=list)
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    xtc_ignore_tokens: frozenset[int] | None = None


SAMPLING_PARAMETERS = {field.name for field in dataclasses.fields(FakeSamplerSettings)} - SAMPLER_STATE_FIELDS


@dataclass(frozen=True)
class FakeIds:
    """Token ids shaped like ExLlamaV2's tensors: (1, n)."""

    ids: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (1, len(self.ids))


@dataclass
class FakeJob:
    input_ids: FakeIds
    max_new_tokens: int
    gen_settings: FakeSamplerSettings
    stop_conditions: list[int]
    identifier: int
    # What the caller passed to the settings, by name.
    settings_kwargs: dict[str, object]
    script: Iterator[ScriptItem] = field(default_factory=lambda: iter(()))
    new_tokens: int = 0
    held_text: str = ""
    held_tokens: list[int] = field(default_factory=list)


class FakeGenerator:
    """See the module docstring. `script` is every job's output: text tokens, token ids (no text) and HELD."""

    def __init__(
        self, script: Sequence[ScriptItem], *, repeat: bool = False, max_batch_size: int = 1, batch_of: int = 1
    ) -> None:
        """`batch_of`: iterate() starts nothing until that many jobs came, so that a test sees them batched."""
        self.script = script
        self.repeat = repeat
        self.max_batch_size = max_batch_size
        self.batch_of = batch_of
        self.enqueued: list[FakeJob] = []
        self.cancelled: list[FakeJob] = []
        self.pending: list[FakeJob] = []
        self.active: list[FakeJob] = []
        self.most_active = 0
        self.threads: set[int] = set()
        self.fail_iterate: Exception | None = None
        self.fail_enqueue: Exception | None = None

    def enqueue(self, job: FakeJob) -> int:
        self.threads.add(threading.get_ident())
        if self.fail_enqueue is not None:
            raise self.fail_enqueue
        job.script = iter(self._forever() if self.repeat else self.script)
        self.enqueued.append(job)
        self.pending.append(job)
        return len(self.enqueued)

    def cancel(self, job: FakeJob) -> None:
        self.threads.add(threading.get_ident())
        self.cancelled.append(job)
        for jobs in (self.pending, self.active):
            if job in jobs:
                jobs.remove(job)

    def iterate(self) -> list[dict[str, Any]]:
        self.threads.add(threading.get_ident())
        if self.fail_iterate is not None:
            error, self.fail_iterate = self.fail_iterate, None
            raise error
        results: list[dict[str, Any]] = []
        if len(self.enqueued) < self.batch_of:
            return results
        while self.pending and len(self.active) < self.max_batch_size:
            job = self.pending.pop(0)
            self.active.append(job)
            results.append({"job": job, "stage": "started", "eos": False, "identifier": job.identifier})
        self.most_active = max(self.most_active, len(self.active))
        for job in list(self.active):
            results.append(self._sample(job))
        return results

    def _forever(self) -> Iterator[ScriptItem]:
        while True:
            yield from self.script

    def _sample(self, job: FakeJob) -> dict[str, Any]:
        item = next(job.script)
        job.new_tokens += 1
        token = item if isinstance(item, int) else 100 + job.new_tokens
        result: dict[str, Any] = {"job": job, "stage": "streaming", "eos": False, "identifier": job.identifier}
        if token in job.stop_conditions:
            # As in 0.3.2: a stop token ends the job without emitting what was held.
            return result | self._final(job, "stop_token")
        job.held_tokens.append(token)
        if isinstance(item, str):
            job.held_text += item
        if job.new_tokens >= job.max_new_tokens:
            return result | self._emit(job) | self._final(job, "max_new_tokens")
        return result if item is HELD else result | self._emit(job)

    def _emit(self, job: FakeJob) -> dict[str, Any]:
        emitted = {"text": job.held_text, "token_ids": FakeIds(tuple(job.held_tokens))}
        job.held_text, job.held_tokens = "", []
        return emitted

    def _final(self, job: FakeJob, reason: str) -> dict[str, Any]:
        self.active.remove(job)
        return {
            "eos": True,
            "eos_reason": reason,
            "new_tokens": job.new_tokens,
            "prompt_tokens": job.input_ids.shape[-1],
            "cached_tokens": 0,
            "time_enqueued": 0.001,
            "time_prefill": 0.02,
            "time_generate": 0.3,
        }


class FakeModel:
    """A LoadedModel whose tokens are words; its generator is a FakeGenerator."""

    def __init__(self, generator: FakeGenerator, model_dir: Path, plan: CachePlan) -> None:
        self._generator = generator
        self._plan = plan
        self._prompt_format = PromptFormat.from_model_dir(model_dir)
        self._stop_token_ids = sorted(eos_token_ids(model_dir, tokenizer_eos=EOS))
        self.encoded: list[tuple[str, bool]] = []
        self.closed = False

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def plan(self) -> CachePlan:
        return self._plan

    @property
    def prompt_format(self) -> PromptFormat:
        return self._prompt_format

    @property
    def generator(self) -> FakeGenerator:
        return self._generator

    def gpus(self) -> list[GpuInfo]:
        return [GpuInfo("NVIDIA H100 80GB HBM3", 85_520_809_984)]

    def encode(self, text: str, *, add_bos: bool) -> TokenIds:
        self.encoded.append((text, add_bos))
        ids = ([1] if add_bos else []) + [10] * len(text.split())
        return TokenIds(FakeIds(tuple(ids)), len(ids))

    def new_job(self, spec: JobSpec, identifier: int) -> FakeJob:
        kwargs: dict[str, Any] = spec.sampler.as_kwargs()
        assert isinstance(spec.input_ids, FakeIds)
        return FakeJob(
            input_ids=spec.input_ids,
            max_new_tokens=spec.max_new_tokens,
            gen_settings=FakeSamplerSettings(**kwargs),
            stop_conditions=self._stop_token_ids,
            identifier=identifier,
            settings_kwargs=kwargs,
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder's JSON files: EOS 2 in config.json, end-of-turn 9 only in generation_config.json."""
    files = {
        "config.json": {"architectures": ["LlamaForCausalLM"], "eos_token_id": EOS},
        "generation_config.json": {"eos_token_id": [EOS, END_OF_TURN]},
        "tokenizer_config.json": {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": TEMPLATE},
        "tokenizer.json": {},
    }
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    return tmp_path


UNPAGED = CachePlan(paged=False, max_seq_len=256, cache_tokens=256, batch_size=1)


@contextlib.asynccontextmanager
async def running(
    model_dir: Path,
    script: Sequence[ScriptItem],
    *,
    repeat: bool = False,
    plan: CachePlan = UNPAGED,
    batch_of: int = 1,
) -> AsyncIterator[tuple[ExLlamaV2Backend, FakeModel]]:
    generator = FakeGenerator(script, repeat=repeat, max_batch_size=plan.batch_size, batch_of=batch_of)
    model = FakeModel(generator, model_dir, plan)
    backend = ExLlamaV2Backend(model)
    try:
        yield backend, model
    finally:
        await asyncio.wait_for(backend.close(), STEP_TIMEOUT)


def request(**changes: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "prompt": "Say hello",
        "model": MODEL_ID,
        "max_tokens": 16,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    return GenerationRequest(**(fields | changes))


async def generate(backend: ExLlamaV2Backend, req: GenerationRequest) -> list[TokenChunk]:
    async with contextlib.aclosing(backend.generate(req)) as chunks:
        return await asyncio.wait_for(_collect(chunks), STEP_TIMEOUT)


async def _collect(chunks: AsyncIterator[TokenChunk]) -> list[TokenChunk]:
    return [chunk async for chunk in chunks]


def text_of(chunks: list[TokenChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


def tokens_of(chunks: list[TokenChunk]) -> int:
    return sum(chunk.token_count for chunk in chunks)


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


# Concurrency.


def test_without_paged_attention_the_miner_offers_one_job_at_a_time() -> None:
    plan = plan_cache(paged=False, model_max_seq_len=131072, max_seq_len=None, cache_tokens=None, max_concurrency=8)

    assert (plan.concurrency, plan.batch_size, plan.max_seq_len, plan.cache_tokens) == (1, 1, 4096, 4096)


def paged_plan(
    *, max_seq_len: int | None = None, cache_tokens: int | None = None, max_concurrency: int = 1
) -> CachePlan:
    return plan_cache(
        paged=True,
        model_max_seq_len=8192,
        max_seq_len=max_seq_len,
        cache_tokens=cache_tokens,
        max_concurrency=max_concurrency,
    )


def test_paged_the_miner_offers_the_batch_the_cache_holds() -> None:
    assert paged_plan(max_concurrency=16).concurrency == 16
    # Lengths round up to whole cache pages; the cache defaults to a full-length job per batch slot.
    assert paged_plan(max_seq_len=1000, max_concurrency=4) == CachePlan(
        paged=True, max_seq_len=1024, cache_tokens=4096, batch_size=4
    )
    # A cache that holds 3 full-length jobs runs 3 at once, whatever the batch size.
    assert paged_plan(max_seq_len=2048, cache_tokens=3 * 2048 + 100, max_concurrency=16).concurrency == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_seq_len": 10_000}, "--max-seq-len 10000 is more than the model's context"),
        ({"max_seq_len": 0}, "--max-seq-len must be at least 1"),
        ({"cache_tokens": 1000}, "--cache-size 1000 cannot hold one job"),
        ({"max_concurrency": 300}, "--max-concurrency 300 is more than ExLlamaV2 batches"),
    ],
)
def test_cache_settings_that_cannot_work(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paged_plan(**settings)


async def test_the_backend_advertises_its_plan_gpus_and_model(model_dir: Path) -> None:
    paged = CachePlan(paged=True, max_seq_len=256, cache_tokens=1024, batch_size=4)
    async with running(model_dir, [EOS], plan=paged) as (backend, _):
        assert (backend.backend_name, list(backend.models), backend.max_concurrency) == ("exllamav2", [MODEL_ID], 4)
        assert backend.gpus() == [GpuInfo("NVIDIA H100 80GB HBM3", 85_520_809_984)]
    async with running(model_dir, [EOS]) as (backend, _):
        assert backend.max_concurrency == 1


async def test_paged_jobs_run_in_one_batch_on_one_thread(model_dir: Path) -> None:
    paged = CachePlan(paged=True, max_seq_len=256, cache_tokens=1024, batch_size=4)
    async with running(model_dir, ["x"], repeat=True, plan=paged, batch_of=4) as (backend, model):
        outputs = await asyncio.gather(*(generate(backend, request(max_tokens=50)) for _ in range(4)))

    assert [(text_of(chunks), tokens_of(chunks)) for chunks in outputs] == [("x" * 50, 50)] * 4
    assert model.generator.most_active == 4
    assert len(model.generator.threads) == 1
    assert threading.get_ident() not in model.generator.threads


async def test_cancelling_one_batched_job_leaves_the_others_running(model_dir: Path) -> None:
    paged = CachePlan(paged=True, max_seq_len=256, cache_tokens=1024, batch_size=4)
    async with running(model_dir, ["x"], repeat=True, plan=paged, batch_of=2) as (backend, model):
        kept = asyncio.create_task(generate(backend, request(max_tokens=200)))
        async with contextlib.aclosing(backend.generate(request(max_tokens=201))) as dropped:
            await asyncio.wait_for(anext(dropped), STEP_TIMEOUT)
        chunks = await kept

    assert (tokens_of(chunks), chunks[-1].finish_reason) == (200, "length")
    assert [job.max_new_tokens for job in model.generator.cancelled] == [201]
    assert model.generator.most_active == 2


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


# Command line.


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_miner_arguments(parser)
    return parser.parse_args(("--api-key=k", *argv))


def test_exllamav2_options_reach_the_backend() -> None:
    config, backend, options = config_from_args(
        parse(
            "--backend=exllamav2",
            "--model-dir=/models/llama",
            "--model-name=llama-3.2-1b",
            "--cache-size=65536",
            "--max-seq-len=8192",
            "--cache-quant=q8",
            "--max-concurrency=8",
        )
    )

    assert (backend, config.max_concurrency) == ("exllamav2", 8)
    assert options == {
        "model_dir": "/models/llama",
        "model_name": "llama-3.2-1b",
        "cache_size": 65536,
        "max_seq_len": 8192,
        "cache_quant": "q8",
        "max_concurrency": 8,
    }
    assert config_from_args(parse("--backend=exllamav2", "--model-dir=m"))[2] == {
        "model_dir": "m",
        "max_concurrency": 1,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--backend=exllamav2",), "the exllamav2 backend needs --model-dir"),
        (("--backend=exllamav2", "--model-dir=m", "--model=x.gguf"), "the exllamav2 backend loads --model-dir"),
        (("--backend=exllamav2", "--model-dir=m", "--tokens-per-second=5"), "--tokens-per-second applies to"),
        (("--model-dir=m",), "--model-dir applies to the exllamav2 backend only"),
        (("--backend=synthetic", "--cache-quant=q4"), "--cache-quant applies to the exllamav2 backend only"),
        (("--max-seq-len=4096",), "--max-seq-len applies to the exllamav2 backend only"),
        (("--cache-size=4096",), "--cache-size applies to the exllamav2 backend only"),
    ],
)
def test_options_that_do_not_fit_the_backend(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_args(parse(*argv))
