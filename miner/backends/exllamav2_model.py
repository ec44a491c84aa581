"""Loading a model with ExLlamaV2: the one module that imports exllamav2 and torch.

Importing exllamav2 builds its CUDA extension on first use (or loads the build cached in TORCH_EXTENSIONS_DIR), so
only `ExLlamaV2Backend.load` imports this module. Written against exllamav2 0.3.2; both libraries are untyped
here, and what leaves this module is typed (`ExLlamaV2Model` is an exllamav2_types.LoadedModel).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import exllamav2.attn
import torch
from exllamav2 import (
    ExLlamaV2,
    ExLlamaV2Cache,
    ExLlamaV2Cache_Q4,
    ExLlamaV2Cache_Q6,
    ExLlamaV2Cache_Q8,
    ExLlamaV2Config,
    ExLlamaV2Tokenizer,
)
from exllamav2.generator import ExLlamaV2DynamicGenerator, ExLlamaV2DynamicJob, ExLlamaV2Sampler

from miner.backends.base import GpuInfo
from miner.backends.exllamav2_loop import DynamicGenerator, JobSpec
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import CachePlan, CacheQuant, check_model_dir, eos_token_ids, plan_cache
from miner.backends.exllamav2_types import TokenIds

_CACHE_CLASSES: dict[CacheQuant, Any] = {
    "fp16": ExLlamaV2Cache,
    "q4": ExLlamaV2Cache_Q4,
    "q6": ExLlamaV2Cache_Q6,
    "q8": ExLlamaV2Cache_Q8,
}


class ExLlamaV2Model:
    """A loaded model, its cache, tokenizer and dynamic generator."""

    def __init__(
        self,
        *,
        model_id: str,
        plan: CachePlan,
        prompt_format: PromptFormat,
        model: Any,
        tokenizer: Any,
        generator: Any,
        stop_token_ids: frozenset[int],
    ) -> None:
        self._model_id = model_id
        self._plan = plan
        self._prompt_format = prompt_format
        self._model = model
        self._tokenizer = tokenizer
        self._generator: DynamicGenerator = generator
        self._stop_token_ids = sorted(stop_token_ids)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def plan(self) -> CachePlan:
        return self._plan

    @property
    def prompt_format(self) -> PromptFormat:
        return self._prompt_format

    @property
    def generator(self) -> DynamicGenerator:
        return self._generator

    def gpus(self) -> list[GpuInfo]:
        devices = Counter(
            (properties.name, properties.total_memory)
            for properties in map(torch.cuda.get_device_properties, range(torch.cuda.device_count()))
        )
        return [GpuInfo(name, vram_bytes, count) for (name, vram_bytes), count in devices.items()]

    def encode(self, text: str, *, add_bos: bool) -> TokenIds:
        ids = self._tokenizer.encode(text, add_bos=add_bos, encode_special_tokens=True)
        return TokenIds(ids, int(ids.shape[-1]))

    def new_job(self, spec: JobSpec, identifier: int) -> object:
        return ExLlamaV2DynamicJob(
            input_ids=spec.input_ids,
            max_new_tokens=spec.max_new_tokens,
            gen_settings=ExLlamaV2Sampler.Settings(**spec.sampler.as_kwargs()),
            stop_conditions=self._stop_token_ids,
            identifier=identifier,
        )

    def close(self) -> None:
        # The weights go now, the cache with the last reference to the generator.
        self._model.unload()
        torch.cuda.empty_cache()


def load_model(
    *,
    model_dir: str,
    model_name: str | None,
    cache_size: int | None,
    max_seq_len: int | None,
    cache_quant: CacheQuant,
    max_concurrency: int,
    sdpa: bool,
) -> ExLlamaV2Model:
    """See ExLlamaV2Backend.load. Raises ModelFileNotFoundError for a folder that is not a model, ValueError for
    settings that cannot work."""
    path = Path(model_dir)
    # Said before the weights take their time to load: ExLlamaV2 asserts on a missing config.json, and 0.3.2 reads
    # no tokenizer but tokenizer.json.
    check_model_dir(path)
    prompt_format = PromptFormat.from_model_dir(path)
    config = ExLlamaV2Config(str(path))
    config.arch_compat_overrides()
    paged = exllamav2.attn.has_flash_attn_with_paged and not config.no_flash_attn
    if not paged and not sdpa:
        # Without flash-attn, ExLlamaV2 0.3.2 runs prompt processing through torch SDPA with no causal mask
        # (attn.py, _attn_torch): its matmul attention builds the mask. docs/gpu-miner.md has the details.
        config.no_sdpa = True
    plan = plan_cache(
        paged=paged,
        model_max_seq_len=config.max_seq_len,
        max_seq_len=max_seq_len,
        cache_tokens=cache_size,
        max_concurrency=max_concurrency,
    )
    config.max_seq_len = plan.max_seq_len
    model = ExLlamaV2(config)
    cache = _CACHE_CLASSES[cache_quant](model, max_seq_len=plan.cache_tokens, lazy=True)
    model.load_autosplit(cache)
    tokenizer = ExLlamaV2Tokenizer(config)
    generator = ExLlamaV2DynamicGenerator(
        model=model,
        cache=cache,
        tokenizer=tokenizer,
        max_batch_size=plan.batch_size,
        max_seq_len=plan.max_seq_len,
        paged=plan.paged,
        # Its thread pool evaluates grammar filters, which no job has.
        filter_background_eval=False,
    )
    return ExLlamaV2Model(
        model_id=model_name or path.name,
        plan=plan,
        prompt_format=prompt_format,
        model=model,
        tokenizer=tokenizer,
        generator=generator,
        stop_token_ids=eos_token_ids(path, tokenizer.eos_token_id),
    )
