"""What the ExLlamaV2 backend asks of ExLlamaV2, decided without importing it: the sampler settings of a request,
the tokens that end a generation, and the size of the cache and the batch.

Written against exllamav2 0.3.2. Nothing here imports exllamav2 or torch, so all of it is tested on any machine.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from miner.backends.base import GenerationRequest
from miner.model_files import ModelFileNotFoundError

CacheQuant = Literal["fp16", "q4", "q6", "q8"]
CACHE_QUANTS: tuple[CacheQuant, ...] = ("fp16", "q4", "q6", "q8")

# Longest prompt + output per job when the miner names none: long enough for chat, short enough that a big model's
# cache fits next to its weights.
DEFAULT_MAX_SEQ_LEN = 4096
# ExLlamaV2's cache page (dynamic.PAGED_PAGE_SIZE): the cache holds a whole number of them, and in paged mode each
# job takes whole pages.
PAGE_TOKENS = 256
# Tokens the model takes in one forward pass (ExLlamaV2Config.max_input_len), unless the sequence is shorter.
_MAX_INPUT_TOKENS = 2048
# Tokens the dynamic generator evaluates per job and pass (its max_q_size): a batch of N jobs needs N times this
# within the input length above.
_TOKENS_PER_JOB_AND_PASS = 8

# Fields of ExLlamaV2Sampler.Settings that hold a job's running state, not a sampling parameter.
SAMPLER_STATE_FIELDS = frozenset({"mirostat_mu", "post_sampling_hooks", "ngram_trie", "ngram_index", "ngram_history"})


@dataclass(frozen=True, slots=True)
class SamplerSettings:
    """Every sampling parameter of ExLlamaV2Sampler.Settings, by its name there.

    ExLlamaV2's defaults are not neutral (temperature 0.8, top_k 50, top_p 0.8, a repetition penalty of 1.025), so
    each job passes all of these and leaves none to them. Only temperature, top_k and top_p vary; the rest switch
    a filter off.
    """

    temperature: float
    top_k: int
    top_p: float
    top_a: float = 0.0
    min_p: float = 0.0
    tfs: float = 0.0
    typical: float = 0.0
    skew: float = 0.0
    # Dynamic temperature is off while max_temp is not above min_temp.
    smoothing_factor: float = 0.0
    min_temp: float = 0.0
    max_temp: float = 0.0
    temp_exponent: float = 1.0
    temperature_last: bool = False
    token_repetition_penalty: float = 1.0
    token_repetition_range: int = -1
    token_repetition_decay: int = 0
    token_frequency_penalty: float = 0.0
    token_presence_penalty: float = 0.0
    # tau and eta only matter with mirostat on.
    mirostat: bool = False
    mirostat_tau: float = 1.5
    mirostat_eta: float = 0.1
    token_bias: None = None
    cfg_scale: None = None
    # DRY is off at a multiplier of 0, XTC at a probability of 0; their other fields only matter when on.
    dry_multiplier: float = 0.0
    dry_allowed_length: int = 2
    dry_base: float = 1.75
    dry_range: int = 0
    dry_max_ngram: int = 20
    dry_sequence_breakers: None = None
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    xtc_ignore_tokens: None = None

    def as_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ExLlamaV2Sampler.Settings."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def sampler_settings(request: GenerationRequest) -> SamplerSettings:
    if request.temperature == 0.0:
        # Greedy, said outright: ExLlamaV2 turns any temperature under 0.01 into top_k 1, but documents it nowhere.
        return SamplerSettings(temperature=1.0, top_k=1, top_p=1.0)
    # top_k 0 is no top-k cut; top_p 1.0 is no nucleus cut.
    return SamplerSettings(temperature=request.temperature, top_k=0, top_p=request.top_p)


def check_model_dir(model_dir: Path) -> None:
    """Raises ModelFileNotFoundError unless the folder has the files ExLlamaV2 reads besides the weights."""
    for name in ("config.json", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise ModelFileNotFoundError(
                f"{model_dir} has no {name}: --model-dir takes a Hugging Face model folder (EXL2 or FP16 safetensors)"
                " with config.json and tokenizer.json"
            )


def eos_token_ids(model_dir: Path, tokenizer_eos: int | None) -> frozenset[int]:
    """Every token that ends a generation: the tokenizer's EOS and those of config.json and generation_config.json.

    ExLlamaV2 keeps only the first of config.json's list, but chat models end turns with others (Llama 3 ends
    them with <|eot_id|>, listed after <|end_of_text|>).
    """
    ids = {tokenizer_eos} if tokenizer_eos is not None else set()
    for name in ("config.json", "generation_config.json"):
        path = model_dir / name
        if path.is_file():
            ids.update(_token_ids(json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")))
    if not ids:
        raise ValueError(f"{model_dir} names no EOS token (eos_token_id) in config.json or generation_config.json")
    return frozenset(ids)


def _token_ids(value: object) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, int)]
    return []


@dataclass(frozen=True, slots=True)
class CachePlan:
    """How the dynamic generator is set up, and what that lets the miner promise."""

    # Paged attention (flash-attn 2.5.7 or later) batches jobs; without it the generator runs one at a time.
    paged: bool
    # Longest prompt + output of one job, a whole number of pages.
    max_seq_len: int
    # The whole cache, shared by the jobs that run at once.
    cache_tokens: int
    # The generator's max_batch_size.
    batch_size: int

    @property
    def concurrency(self) -> int:
        """Jobs that can run at once however long each is, so that a job the miner accepts never waits."""
        if not self.paged:
            return 1
        return min(self.batch_size, self.cache_tokens // self.max_seq_len)


def plan_cache(
    *,
    paged: bool,
    model_max_seq_len: int,
    max_seq_len: int | None,
    cache_tokens: int | None,
    max_concurrency: int,
) -> CachePlan:
    """The generator's setup for the miner's settings (None: the default). Raises ValueError for settings that
    cannot work, naming the option."""
    if max_seq_len is not None and max_seq_len > model_max_seq_len:
        raise ValueError(f"--max-seq-len {max_seq_len} is more than the model's context ({model_max_seq_len} tokens)")
    if max_seq_len is not None and max_seq_len < 1:
        raise ValueError(f"--max-seq-len must be at least 1, got {max_seq_len}")
    longest = _whole_pages(max_seq_len or min(DEFAULT_MAX_SEQ_LEN, model_max_seq_len))
    if cache_tokens is not None and cache_tokens < longest:
        raise ValueError(f"--cache-size {cache_tokens} cannot hold one job of --max-seq-len {longest} tokens")
    if not paged:
        # Unpaged, the cache is one page that one job has to itself: more would never be used.
        return CachePlan(paged=False, max_seq_len=longest, cache_tokens=longest, batch_size=1)
    # ExLlamaV2 asserts this when it builds the generator; said here in the miner's terms.
    most_jobs = min(_MAX_INPUT_TOKENS, longest) // _TOKENS_PER_JOB_AND_PASS
    if max_concurrency > most_jobs:
        raise ValueError(f"--max-concurrency {max_concurrency} is more than ExLlamaV2 batches (at most {most_jobs})")
    total = _whole_pages(cache_tokens or longest * max_concurrency)
    return CachePlan(paged=True, max_seq_len=longest, cache_tokens=total, batch_size=max_concurrency)


def _whole_pages(tokens: int) -> int:
    return -(-tokens // PAGE_TOKENS) * PAGE_TOKENS
