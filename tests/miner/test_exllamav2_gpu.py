"""The ExLlamaV2 backend on an NVIDIA GPU, with a random-weight Llama that bench/gpu/make_random_llama.py builds.

Skipped without a CUDA device or without exllamav2; bench/gpu/README.md says how to run it on a lent GPU machine.

Tolerance for logits: at every position of a 300-token prompt, ExLlamaV2's logits stay within 2% of the largest
reference logit of transformers' FP16 forward pass (eager attention). FP16 rounding over four layers stays well
under that; attention without a causal mask during prompt processing, which ExLlamaV2 0.3.2's SDPA path appears to
have, would not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc.aio
import pytest

from aitbc.client import AsyncClient
from aitbc.v1 import models_pb2, models_pb2_grpc
from miner.agent import MinerAgent
from miner.backends.base import GenerationRequest, GpuInfo
from miner.backends.exllamav2 import ExLlamaV2Backend
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import SAMPLER_STATE_FIELDS, SamplerSettings, eos_token_ids
from miner.config import MinerConfig
from tests.conftest import Keys
from tests.support.rpc import key

from .fakes import STEP_TIMEOUT

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch", reason="torch is not installed")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
# Importing exllamav2 builds its CUDA extension, or loads the build cached in TORCH_EXTENSIONS_DIR.
exllamav2 = pytest.importorskip("exllamav2", reason="exllamav2 is not installed (bench/gpu/README.md)")
exllamav2_attn = pytest.importorskip("exllamav2.attn")
exllamav2_generator = pytest.importorskip("exllamav2.generator")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

MAKE_RANDOM_LLAMA = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "make_random_llama.py"
# An id the coordinator's model catalog knows: the tiny model stands in for it.
MODEL_ID = "llama-3.2-1b-instruct"
LOGIT_TOLERANCE = 0.02
PROMPT_TOKENS = 300
MAX_SEQ_LEN = 1024
PROMPT = "Tell me a long story about the sea."
# Neither flash-attn nor xformers: prompt processing goes through ExLlamaV2's torch attention, where SDPA matters.
TORCH_ATTENTION = not (exllamav2_attn.has_flash_attn or exllamav2_attn.has_xformers)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run([sys.executable, str(MAKE_RANDOM_LLAMA), str(folder), "--tiny"], check=True)
    return folder


@pytest.fixture(scope="module")
def prompt_ids(model_dir: Path) -> Any:
    vocab = exllamav2.ExLlamaV2Tokenizer(exllamav2.ExLlamaV2Config(str(model_dir))).get_vocab_size()
    # BOS, then random ordinary tokens (the special ones have the first ids).
    ids = torch.randint(8, vocab, (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(0))
    ids[0, 0] = 0
    return ids


@pytest.fixture(scope="module")
def reference_logits(model_dir: Path, prompt_ids: Any) -> Any:
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float16, attn_implementation="eager"
    ).cuda()
    with torch.inference_mode():
        logits = model(prompt_ids.cuda()).logits.float().cpu()
    del model
    torch.cuda.empty_cache()
    return logits


@contextlib.contextmanager
def loaded(model_dir: Path, *, sdpa: bool) -> Iterator[tuple[Any, Any, Any]]:
    """Model, cache and config, loaded with ExLlamaV2's own API as its examples do."""
    config = exllamav2.ExLlamaV2Config(str(model_dir))
    config.arch_compat_overrides()
    config.no_sdpa = not sdpa
    config.max_seq_len = MAX_SEQ_LEN
    model = exllamav2.ExLlamaV2(config)
    cache = exllamav2.ExLlamaV2Cache(model, max_seq_len=MAX_SEQ_LEN, lazy=True)
    model.load_autosplit(cache)
    try:
        yield model, cache, config
    finally:
        model.unload()
        torch.cuda.empty_cache()


def test_the_sampler_settings_name_every_parameter_of_exllamav2s() -> None:
    settings_class = exllamav2_generator.ExLlamaV2Sampler.Settings
    ours = {field.name for field in dataclasses.fields(SamplerSettings)}

    assert ours == {field.name for field in dataclasses.fields(settings_class)} - SAMPLER_STATE_FIELDS
    settings_class(**SamplerSettings(temperature=0.7, top_k=0, top_p=0.9).as_kwargs())


@pytest.mark.parametrize(
    "sdpa",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.xfail(
                TORCH_ATTENTION, strict=True, reason="ExLlamaV2 0.3.2's SDPA prefill appears to have no causal mask"
            ),
        ),
    ],
)
def test_logits_match_transformers(model_dir: Path, prompt_ids: Any, reference_logits: Any, sdpa: bool) -> None:
    with loaded(model_dir, sdpa=sdpa) as (model, cache, _), torch.inference_mode():
        logits = model.forward(prompt_ids, cache=cache).float().cpu()[..., : reference_logits.shape[-1]]

    worst = (logits - reference_logits).abs().max().item()
    scale = reference_logits.abs().max().item()
    assert worst <= LOGIT_TOLERANCE * scale, f"max |logit difference| {worst:.4f} > {LOGIT_TOLERANCE} x {scale:.3f}"


async def test_the_backend_streams_counts_advertises_and_frees_a_cancelled_job(model_dir: Path) -> None:
    from miner.backends.exllamav2_model import load_model

    model = await asyncio.to_thread(
        load_model,
        model_dir=str(model_dir),
        model_name=MODEL_ID,
        cache_size=None,
        max_seq_len=MAX_SEQ_LEN,
        cache_quant="fp16",
        max_concurrency=4,
        sdpa=False,
    )
    backend = ExLlamaV2Backend(model)
    try:
        assert backend.max_concurrency == (4 if exllamav2_attn.has_flash_attn_with_paged else 1)
        device = torch.cuda.get_device_properties(0)
        assert backend.gpus()[0] == GpuInfo(device.name, device.total_memory, torch.cuda.device_count())

        request = GenerationRequest(prompt=PROMPT, model=MODEL_ID, max_tokens=40, temperature=0.0, top_p=1.0)
        chunks = [chunk async for chunk in backend.generate(request)]
        assert 0 < sum(chunk.token_count for chunk in chunks) <= 40
        assert chunks[-1].finish_reason in ("stop", "length")
        assert [chunk async for chunk in backend.generate(request)] == chunks

        async with contextlib.aclosing(backend.generate(dataclasses.replace(request, max_tokens=800))) as stream:
            assert (await anext(stream)).finish_reason is None
        # Out of the generator, its cache pages free, once the stream is closed.
        assert cast(Any, model.generator).num_remaining_jobs() == 0
    finally:
        await backend.close()


async def test_full_stack_greedy_output_equals_exllamav2_called_directly(
    model_dir: Path, target: str, keys: Keys
) -> None:
    max_tokens = 48
    backend = await asyncio.to_thread(
        ExLlamaV2Backend.load, model_dir=str(model_dir), model_name=MODEL_ID, max_seq_len=MAX_SEQ_LEN
    )
    agent = MinerAgent(MinerConfig(coordinator=target, api_key=keys.miner, miner_id="gpu-test"), backend)
    serving = asyncio.create_task(agent.run())
    try:
        await served(target, keys.client, MODEL_ID)
        async with AsyncClient(target, keys.client) as client:
            job = await client.submit_job(PROMPT, model=MODEL_ID, max_tokens=max_tokens, temperature=0.0)
            done = await client.wait_for_job(job.job_id, timeout=60)
    finally:
        agent.stop()
        await serving
        await backend.close()
    assert done.status == "completed", done.error

    prompt = PromptFormat.from_model_dir(model_dir).prompt(
        GenerationRequest(prompt=PROMPT, model=MODEL_ID, max_tokens=max_tokens, temperature=0.0, top_p=1.0)
    )
    direct_output, last = await asyncio.to_thread(_generate_directly, model_dir, prompt.text, max_tokens)

    assert done.result == direct_output
    # The EOS token that ended it, if one did, is no output.
    assert done.usage.completion_tokens == last["new_tokens"] - (1 if last["eos_reason"] == "stop_token" else 0)
    assert done.usage.prompt_tokens == last["prompt_tokens"]


async def served(target: str, api_key: str, model: str) -> None:
    """Returns once a connected miner serves `model`: the coordinator refuses jobs that no miner could take."""
    async with grpc.aio.insecure_channel(target) as channel, asyncio.timeout(STEP_TIMEOUT):
        stub = models_pb2_grpc.ModelServiceStub(channel)
        while True:
            listed = await stub.ListModels(models_pb2.ListModelsRequest(), metadata=key(api_key))
            if model in {entry.id for entry in listed.data}:
                return
            await asyncio.sleep(0.05)


def _generate_directly(model_dir: Path, prompt_text: str, max_tokens: int) -> tuple[str, dict[str, Any]]:
    """Greedy output from ExLlamaV2's own generate(), set up as the backend sets it up."""
    paged = bool(exllamav2_attn.has_flash_attn_with_paged)
    with loaded(model_dir, sdpa=False) as (model, cache, config):
        tokenizer = exllamav2.ExLlamaV2Tokenizer(config)
        generator = exllamav2_generator.ExLlamaV2DynamicGenerator(
            model=model, cache=cache, tokenizer=tokenizer, paged=paged, max_batch_size=1
        )
        text, last = generator.generate(
            prompt=prompt_text,
            max_new_tokens=max_tokens,
            gen_settings=exllamav2_generator.ExLlamaV2Sampler.Settings.greedy(),
            stop_conditions=sorted(eos_token_ids(model_dir, tokenizer.eos_token_id)),
            encode_special_tokens=True,
            add_bos=False,
            completion_only=True,
            return_last_results=True,
        )
    return str(text), cast(dict[str, Any], last)
