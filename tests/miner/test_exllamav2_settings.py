"""ExLlamaV2 cache planning and the miner options that reach the backend."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from miner.backends.base import GpuInfo
from miner.backends.exllamav2_settings import (
    CachePlan,
    plan_cache,
)
from miner.main import add_miner_arguments, config_from_args

from . import exllamav2_fakes as ex
from .fakes import STEP_TIMEOUT

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
    async with ex.running(model_dir, [ex.EOS], plan=paged) as (backend, _):
        assert (backend.backend_name, list(backend.models), backend.max_concurrency) == ("exllamav2", [ex.MODEL_ID], 4)
        assert backend.gpus() == [GpuInfo("NVIDIA H100 80GB HBM3", 85_520_809_984)]
    async with ex.running(model_dir, [ex.EOS]) as (backend, _):
        assert backend.max_concurrency == 1


async def test_paged_jobs_run_in_one_batch_on_one_thread(model_dir: Path) -> None:
    paged = CachePlan(paged=True, max_seq_len=256, cache_tokens=1024, batch_size=4)
    async with ex.running(model_dir, ["x"], repeat=True, plan=paged, batch_of=4) as (backend, model):
        outputs = await asyncio.gather(*(ex.generate(backend, ex.request(max_tokens=50)) for _ in range(4)))

    assert [(ex.text_of(chunks), ex.tokens_of(chunks)) for chunks in outputs] == [("x" * 50, 50)] * 4
    assert model.generator.most_active == 4
    assert len(model.generator.threads) == 1
    assert threading.get_ident() not in model.generator.threads


async def test_cancelling_one_batched_job_leaves_the_others_running(model_dir: Path) -> None:
    paged = CachePlan(paged=True, max_seq_len=256, cache_tokens=1024, batch_size=4)
    async with ex.running(model_dir, ["x"], repeat=True, plan=paged, batch_of=2) as (backend, model):
        kept = asyncio.create_task(ex.generate(backend, ex.request(max_tokens=200)))
        async with contextlib.aclosing(backend.generate(ex.request(max_tokens=201))) as dropped:
            await asyncio.wait_for(anext(dropped), STEP_TIMEOUT)
        chunks = await kept

    assert (ex.tokens_of(chunks), chunks[-1].finish_reason) == (200, "length")
    assert [job.max_new_tokens for job in model.generator.cancelled] == [201]
    assert model.generator.most_active == 2


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
