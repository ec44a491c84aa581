"""Does GetJob's NOT_FOUND reveal whether a job id exists? Another tenant's live job against an unknown id.

Prints the median time of each kind of NOT_FOUND and their ratio, measured interleaved in one run over
real gRPC on loopback. A ratio near 1.0 means the answer's timing does not tell the two apart.

    .venv/bin/python bench/not_found_timing.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.services.server import start_coordinator
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc


async def not_found_seconds(stub: jobs_pb2_grpc.JobServiceAsyncStub, job_id: str, api_key: str) -> float:
    started = time.perf_counter()
    try:
        await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=(("x-api-key", api_key),))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return time.perf_counter() - started
    raise AssertionError(f"{job_id} was visible to another tenant")


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        running = await start_coordinator(Path(home) / "aitbc.db", "127.0.0.1:0")
        try:
            now = datetime.now(UTC)
            owner, _ = await create_api_key(running.store, Role.CLIENT, now)
            other, _ = await create_api_key(running.store, Role.CLIENT, now)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                request = jobs_pb2.SubmitJobRequest(prompt="hidden", queue_if_unavailable=True)
                job = (await stub.SubmitJob(request, metadata=(("x-api-key", owner),))).job
                unknown = "job_" + "0" * 24
                live, missing = [], []
                for _ in range(rounds):
                    live.append(await not_found_seconds(stub, job.job_id, other))
                    missing.append(await not_found_seconds(stub, unknown, other))
        finally:
            await running.stop(grace=0)
    live_ms, missing_ms = statistics.median(live) * 1e3, statistics.median(missing) * 1e3
    print(f"NOT_FOUND for another tenant's live job: median {live_ms:.3f} ms (n={rounds})")
    print(f"NOT_FOUND for an unknown job id:         median {missing_ms:.3f} ms (n={rounds})")
    print(f"ratio live/unknown: {live_ms / missing_ms:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args().rounds))
