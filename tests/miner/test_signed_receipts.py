"""Receipts carry the miner's signature: a real agent signs, the coordinator checks, anyone can verify offline."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import grpc.aio
import pytest

from aitbc.cli import main
from aitbc.client import AsyncClient
from aitbc.domain.canonical import text_hash
from aitbc.domain.receipts import MinerAttestation
from aitbc.domain.signing import generate_seed, public_key_of
from aitbc.domain.verify import verify_receipt
from aitbc.key_files import read_private_key
from aitbc.services.server import RunningCoordinator
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc, miner_pb2
from miner.agent import MinerAgent
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig
from tests.conftest import Keys
from tests.support.rpc import collect, key
from tests.support.scripted_miner import ScriptedMiner

from .fakes import STEP_TIMEOUT

# A priced model: free jobs hold nothing and get no receipt.
MODEL = "smollm2-135m-instruct"


async def run_job(target: str, client_key: str) -> jobs_pb2.Job:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        request = jobs_pb2.SubmitJobRequest(
            prompt="sign this", model=MODEL, params=jobs_pb2.SamplingParams(max_tokens=8), queue_if_unavailable=True
        )
        job = (await stub.SubmitJob(request, metadata=key(client_key))).job
        await collect(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id), metadata=key(client_key)))
        return (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id), metadata=key(client_key))).job


async def test_a_signing_miners_receipt_verifies_with_its_key(
    coordinator: RunningCoordinator, target: str, keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "miner-signing-key.pem"
    config = MinerConfig(coordinator=target, api_key=keys.miner, miner_id="signer", key_file=key_file)
    agent = MinerAgent(config, SyntheticBackend(models=[MODEL], tokens_per_second=0))
    running = asyncio.create_task(agent.run())
    try:
        job = await run_job(target, keys.client)
    finally:
        agent.stop()
        await asyncio.wait_for(running, STEP_TIMEOUT)
    assert job.receipt_id
    receipt = await coordinator.store.receipt(job.receipt_id)
    assert receipt is not None
    miner_key = public_key_of(read_private_key(key_file))
    assert receipt.body.miner_signed
    checks = verify_receipt(
        receipt,
        coordinator_key=coordinator.coordinator.public_key,
        output_text=job.result,
        miner_key=miner_key,
        require_miner_signature=True,
    )
    assert checks.ok, checks.failed
    assert not verify_receipt(
        receipt, coordinator_key=coordinator.coordinator.public_key, miner_key=public_key_of(generate_seed())
    ).ok
    # The SDK names the receipt, and `aitbc verify --job-id` checks it with the job's result, in one command.
    async with AsyncClient(target, keys.client) as client:
        assert (await client.get_job(job.job_id)).receipt_id == job.receipt_id
    argv = ["verify", "--job-id", job.job_id, "--coordinator", target, "--api-key", keys.client]
    assert await asyncio.to_thread(main, argv) == 0
    printed = capsys.readouterr().out
    for check in ("coordinator_signature", "miner_signature", "amounts", "output_hash"):
        assert re.search(rf"^{check} +passed ", printed, re.M), printed


async def test_a_signature_that_does_not_cover_the_job_is_not_trusted(
    coordinator: RunningCoordinator, target: str, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    seed = generate_seed()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        request = jobs_pb2.SubmitJobRequest(prompt="x", model=MODEL, queue_if_unavailable=True)
        job = (await stub.SubmitJob(request, metadata=key(keys.client))).job
        async with ScriptedMiner(target, keys.miner) as miner:
            hello = miner_pb2.MinerHello(
                miner_id="liar", models=[MODEL], max_concurrency=1, backend="scripted", public_key=public_key_of(seed)
            )
            await miner.send(miner_pb2.ConnectRequest(hello=hello))
            await miner.expect("welcome")
            await miner.expect("assign")
            # It signs more tokens than it reports: the signature covers a job that was not recorded.
            inflated = MinerAttestation(job.job_id, 1, text_hash("done"), 5, 999).sign(seed)
            done = miner_pb2.JobDone(
                job_id=job.job_id, attempt=1, output="done", prompt_tokens=5, completion_tokens=1, signature=inflated
            )
            await miner.send(miner_pb2.ConnectRequest(done=done))
            await collect(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
        finished = (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    receipt = await coordinator.store.receipt(finished.receipt_id)
    assert receipt is not None
    assert (receipt.body.miner_signed, receipt.body.miner_signature) == (False, None)
    assert any("does not cover job" in record.getMessage() for record in caplog.records)
