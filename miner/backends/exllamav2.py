"""GPU inference with ExLlamaV2: EXL2 or FP16 Hugging Face models, jobs run by its dynamic generator.

Importing this module imports neither exllamav2 nor torch (importing exllamav2 builds or loads its CUDA
extension); `ExLlamaV2Backend.load` does, through exllamav2_model. The backend sees the model only through
exllamav2_types.LoadedModel, so tests run it on a fake generator where there is no GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence

from miner.backends.base import Backend, GenerationRequest, GpuInfo, InvalidRequestError, TokenChunk
from miner.backends.exllamav2_loop import GeneratorLoop, JobSpec
from miner.backends.exllamav2_settings import CacheQuant, sampler_settings
from miner.backends.exllamav2_types import LoadedModel, TokenIds

log = logging.getLogger(__name__)


class ExLlamaV2Backend(Backend):
    """A model on the GPUs. Jobs run through one dynamic generator: batched when it runs paged, one at a time when
    it does not, and `max_concurrency` says which."""

    def __init__(self, model: LoadedModel) -> None:
        self._model = model
        self._loop = GeneratorLoop(model.generator, model.new_job)

    @classmethod
    def load(
        cls,
        *,
        model_dir: str,
        model_name: str | None = None,
        cache_size: int | None = None,
        max_seq_len: int | None = None,
        cache_quant: CacheQuant = "fp16",
        max_concurrency: int = 1,
        sdpa: bool = False,
    ) -> ExLlamaV2Backend:
        """Load an EXL2 or FP16 model folder onto the GPUs, which blocks for a while.

        `model_name` is the id to advertise (default: the folder's name); `cache_size` the KV cache in tokens
        (default: room for `max_concurrency` jobs of `max_seq_len`); `max_seq_len` the longest prompt + output of
        one job (default: 4096, or the model's context if shorter). `sdpa` lets ExLlamaV2 use torch SDPA where
        flash-attn is missing; by default it uses its own masked attention there instead (docs/gpu-miner.md).
        """
        from miner.backends.exllamav2_model import load_model

        return cls(
            load_model(
                model_dir=model_dir,
                model_name=model_name,
                cache_size=cache_size,
                max_seq_len=max_seq_len,
                cache_quant=cache_quant,
                max_concurrency=max_concurrency,
                sdpa=sdpa,
            )
        )

    @property
    def backend_name(self) -> str:
        return "exllamav2"

    @property
    def models(self) -> Sequence[str]:
        return (self._model.model_id,)

    @property
    def max_concurrency(self) -> int:
        return self._model.plan.concurrency

    def gpus(self) -> list[GpuInfo]:
        return self._model.gpus()

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        self.check_model(request.model)
        count = (await asyncio.to_thread(self._encode, request, resume=False)).count
        if count >= self._model.plan.max_seq_len:
            raise InvalidRequestError(
                f"prompt is {count} tokens but a job's context holds {self._model.plan.max_seq_len} in all"
            )
        return count

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        self.check_model(request.model)
        # The earlier attempt's text goes in as the start of the answer: the model continues after it.
        prompt = await asyncio.to_thread(self._encode, request, resume=True)
        budget = min(request.tokens_to_generate, self._model.plan.max_seq_len - prompt.count)
        if budget <= 0:
            yield TokenChunk("", 0, "length")
            return
        job = self._loop.submit(JobSpec(prompt.tensor, budget, sampler_settings(request), request.stop))
        try:
            async for chunk in job.chunks:
                yield chunk
        except BaseException:
            # Cancelled, closed early, or the consumer failed. Waiting for `done` means the job's cache pages are
            # free once this generator is gone.
            self._loop.abandon(job)
            with contextlib.suppress(Exception):
                await job.done
            raise
        outcome = await job.done
        if outcome is not None:
            log.debug(
                "ExLlamaV2 job: %d prompt tokens (%d cached), %d new (%s); queued %.3fs, prefill %.3fs, "
                "generation %.3fs",
                outcome.prompt_tokens,
                outcome.cached_tokens,
                outcome.new_tokens,
                outcome.eos_reason,
                outcome.time_enqueued,
                outcome.time_prefill,
                outcome.time_generate,
            )

    async def close(self) -> None:
        await asyncio.to_thread(self._loop.close)
        await asyncio.to_thread(self._model.close)

    def _encode(self, request: GenerationRequest, *, resume: bool) -> TokenIds:
        prompt = self._model.prompt_format.prompt(request)
        text = prompt.text + request.resume_text if resume else prompt.text
        ids = self._model.encode(text, add_bos=prompt.add_bos)
        if ids.count == 0:
            raise InvalidRequestError("the prompt is empty")
        return ids
