"""A fake of ExLlamaV2's dynamic generator and model, for testing the backend without a GPU.

`FakeGenerator` keeps the contract of exllamav2 0.3.2's ExLlamaV2DynamicGenerator as the backend relies on it:
jobs start up to the batch size, each iterate() samples one token per running job, text ExLlamaV2 holds back as
half a character comes later with its tokens, a stop token ends a job without text, and cancel() takes a job
out. `FakeSamplerSettings` is 0.3.2's ExLlamaV2Sampler.Settings: its fields and its defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miner.backends.base import GenerationRequest, GpuInfo, TokenChunk
from miner.backends.exllamav2 import ExLlamaV2Backend
from miner.backends.exllamav2_loop import JobSpec
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import (
    SAMPLER_STATE_FIELDS,
    CachePlan,
    eos_token_ids,
)
from miner.backends.exllamav2_types import TokenIds

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


def write_model_dir(tmp_path: Path) -> Path:
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
