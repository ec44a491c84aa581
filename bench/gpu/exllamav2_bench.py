"""ExLlamaV2 backend benchmark: the backend called directly, then the same jobs end to end.

For each number of concurrent jobs (1, 4, 16, 32 by default), N jobs start at once and each generates up to
--max-tokens tokens; measured are the time to first token (p50 over the N jobs), the decode rate of one job
(tokens after the first, over the time after the first) and the aggregate rate (all tokens over the wall time).
"direct" drives ExLlamaV2Backend.generate itself; "end to end" submits the jobs through a coordinator and a miner
agent started in this process, over gRPC on loopback, and watches them with the client SDK. The last column is
end to end over direct: what the control plane costs. Asserts nothing.

    python bench/gpu/exllamav2_bench.py --model-dir /tmp/llama-1b [--concurrency 1 4 16 32] [--max-tokens 256]

Without flash-attn the backend runs one job at a time, so concurrent jobs queue (in the generator when direct, in
the coordinator end to end): the header says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc.aio

from aitbc.client import AsyncClient
from aitbc.config import API_KEY_METADATA
from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.services.server import start_coordinator
from aitbc.v1 import models_pb2, models_pb2_grpc
from miner.agent import MinerAgent
from miner.backends.base import GenerationRequest
from miner.backends.exllamav2 import ExLlamaV2Backend
from miner.backends.exllamav2_settings import CACHE_QUANTS
from miner.config import MinerConfig

# The id the random model of make_random_llama.py stands in for, which the coordinator's model catalog knows.
MODEL_ID = "llama-3.2-1b-instruct"
# About 150 tokens once the chat template wraps it.
PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. " * 8


@dataclass(frozen=True, slots=True)
class JobTiming:
    started: float
    first_token: float
    ended: float
    tokens: int

    @property
    def decode_rate(self) -> float:
        return (self.tokens - 1) / (self.ended - self.first_token) if self.tokens > 1 else 0.0


@dataclass(frozen=True, slots=True)
class Level:
    jobs: int
    ttft_p50: float
    decode_rate_p50: float
    aggregate_rate: float


RunJob = Callable[[], Awaitable[JobTiming]]


async def measure(run_job: RunJob, jobs: int) -> Level:
    began = time.perf_counter()
    timings = await asyncio.gather(*(run_job() for _ in range(jobs)))
    wall = time.perf_counter() - began
    return Level(
        jobs=jobs,
        ttft_p50=statistics.median(t.first_token - t.started for t in timings),
        decode_rate_p50=statistics.median(t.decode_rate for t in timings),
        aggregate_rate=sum(t.tokens for t in timings) / wall,
    )


def direct_job(backend: ExLlamaV2Backend, request: GenerationRequest) -> RunJob:
    async def run() -> JobTiming:
        started = time.perf_counter()
        first_token = 0.0
        tokens = 0
        async for chunk in backend.generate(request):
            if chunk.token_count and not first_token:
                first_token = time.perf_counter()
            tokens += chunk.token_count
        return JobTiming(started, first_token, time.perf_counter(), tokens)

    return run


def end_to_end_job(client: AsyncClient, request: GenerationRequest) -> RunJob:
    async def run() -> JobTiming:
        started = time.perf_counter()
        job = await client.submit_job(
            request.prompt, model=request.model, max_tokens=request.max_tokens, temperature=request.temperature
        )
        first_token = 0.0
        tokens = 0
        async for event in client.stream(job.job_id):
            if event.kind == "tokens" and not first_token:
                first_token = time.perf_counter()
            tokens += event.token_count
        return JobTiming(started, first_token, time.perf_counter(), tokens)

    return run


@contextlib.asynccontextmanager
async def stack(backend: ExLlamaV2Backend, max_concurrency: int) -> AsyncIterator[AsyncClient]:
    """A coordinator and a miner agent serving `backend`, in this process; yields a client of theirs."""
    with tempfile.TemporaryDirectory(prefix="aitbc-gpu-bench-") as home:
        coordinator = await start_coordinator(Path(home) / "aitbc.db", "127.0.0.1:0")
        try:
            now = datetime.now(UTC)
            miner_key, _ = await create_api_key(coordinator.store, Role.MINER, now)
            client_key, _ = await create_api_key(coordinator.store, Role.CLIENT, now)
            target = f"127.0.0.1:{coordinator.port}"
            config = MinerConfig(
                coordinator=target, api_key=miner_key, miner_id="gpu-bench", max_concurrency=max_concurrency
            )
            agent = MinerAgent(config, backend)
            serving = asyncio.create_task(agent.run(), name="bench miner")
            try:
                await served(target, client_key)
                async with AsyncClient(target, client_key) as client:
                    yield client
            finally:
                agent.stop()
                await serving
        finally:
            await coordinator.stop(grace=0)


async def served(target: str, api_key: str) -> None:
    """Returns once the miner serves the model: the coordinator refuses jobs that no miner could take."""
    async with grpc.aio.insecure_channel(target) as channel, asyncio.timeout(30):
        stub = models_pb2_grpc.ModelServiceStub(channel)
        while True:
            listed = await stub.ListModels(models_pb2.ListModelsRequest(), metadata=((API_KEY_METADATA, api_key),))
            if MODEL_ID in {model.id for model in listed.data}:
                return
            await asyncio.sleep(0.05)


def table(direct: list[Level], end_to_end: list[Level]) -> str:
    lines = [
        f"{'jobs':>5} | {'TTFT p50 ms':>23} | {'decode tok/s per job':>23} | {'aggregate tok/s':>23} | e2e/direct",
        f"{'':>5} | {'direct':>11} {'e2e':>11} | {'direct':>11} {'e2e':>11} | {'direct':>11} {'e2e':>11} | aggregate",
    ]
    for d, e in zip(direct, end_to_end, strict=True):
        lines.append(
            f"{d.jobs:>5} | {1000 * d.ttft_p50:>11.1f} {1000 * e.ttft_p50:>11.1f}"
            f" | {d.decode_rate_p50:>11.1f} {e.decode_rate_p50:>11.1f}"
            f" | {d.aggregate_rate:>11.1f} {e.aggregate_rate:>11.1f} | {e.aggregate_rate / d.aggregate_rate:>9.3f}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    most = max(args.concurrency)
    backend = await asyncio.to_thread(
        ExLlamaV2Backend.load,
        model_dir=args.model_dir,
        model_name=MODEL_ID,
        max_seq_len=args.max_seq_len,
        cache_quant=args.cache_quant,
        max_concurrency=most,
    )
    try:
        gpu = backend.gpus()[0]
        print(
            f"{gpu.count} x {gpu.name} ({gpu.vram_bytes / 2**30:.0f} GiB); {args.model_dir}, {args.cache_quant} cache;"
            f" the backend runs {backend.max_concurrency} job(s) at once; up to {args.max_tokens} tokens per job,"
            f" temperature {args.temperature}"
        )
        request = GenerationRequest(
            prompt=PROMPT, model=MODEL_ID, max_tokens=args.max_tokens, temperature=args.temperature, top_p=1.0
        )
        # Kernel autotuning and allocator growth happen on the first jobs, not in the measurements.
        await measure(direct_job(backend, request), min(most, 4))
        direct = [await measure(direct_job(backend, request), jobs) for jobs in args.concurrency]
        async with stack(backend, most) as client:
            # The client's channel and the miner's stream warm up on a first job too.
            await measure(end_to_end_job(client, request), 1)
            end_to_end = [await measure(end_to_end_job(client, request), jobs) for jobs in args.concurrency]
        print(table(direct, end_to_end))
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--cache-quant", choices=CACHE_QUANTS, default="fp16")
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
