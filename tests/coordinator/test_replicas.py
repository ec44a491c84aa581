"""Several coordinator processes on one PostgreSQL database behave as one coordinator (docs/scaling.md).

Replicas are real `aitbc coordinator` processes (tests/support/replicas.py); miners and clients speak real
gRPC to whichever replica the test names. Skipped without PostgreSQL's server binaries, like every
PostgreSQL test (`make test` installs them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import httpx
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aitbc.services.readiness import miners_service
from aitbc.v1 import (
    explorer_pb2,
    explorer_pb2_grpc,
    jobs_pb2_grpc,
    miner_pb2,
    models_pb2,
    models_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)
from aitbc.v1 import jobs_pb2 as S
from gateway.main import EmbeddedGateway
from miner import MinerAgent, MinerConfig
from miner.backends.synthetic import SyntheticBackend
from tests.conftest import Keys
from tests.support.postgres import PostgresCluster, free_port
from tests.support.replicas import MODEL, Replica, make_keys, replica_set
from tests.support.rpc import key
from tests.support.scripted_miner import ScriptedMiner

DEADLINE = 30.0


def submit_request(prompt: str, max_tokens: int = 16, *, queue: bool = True) -> S.SubmitJobRequest:
    params = S.SamplingParams(max_tokens=max_tokens)
    return S.SubmitJobRequest(prompt=prompt, model=MODEL, params=params, queue_if_unavailable=queue)


async def submit(replica: Replica, api_key: str, prompt: str, max_tokens: int = 16) -> S.Job:
    async with grpc.aio.insecure_channel(replica.target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        response = await stub.SubmitJob(submit_request(prompt, max_tokens), metadata=key(api_key))
    return response.job


async def get_job(replica: Replica, api_key: str, job_id: str) -> S.Job:
    async with grpc.aio.insecure_channel(replica.target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        return (await stub.GetJob(S.GetJobRequest(job_id=job_id), metadata=key(api_key))).job


async def until_state(replica: Replica, api_key: str, job_id: str, state: int) -> S.Job:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while (job := await get_job(replica, api_key, job_id)).status != state:
        assert asyncio.get_running_loop().time() < deadline, f"{job_id} stayed {job.status} on {replica.name}"
        await asyncio.sleep(0.05)
    return job


async def queued_on(replica: Replica, api_key: str, job_id: str) -> None:
    """Make sure `replica` holds a copy of the pending job, hence has it in its queue: a watch there follows the
    copy, which it makes from the store at once if the job's notification is still on its way."""
    async with grpc.aio.insecure_channel(replica.target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        call = stub.WatchJob(S.WatchJobRequest(job_id=job_id), metadata=key(api_key))
        first = await anext(aiter(call))
        call.cancel()
    assert first.state_change.status == S.JOB_STATE_PENDING


async def watch(replica: Replica, api_key: str, job_id: str, from_seq: int = 0) -> list[S.WatchJobResponse]:
    async with grpc.aio.insecure_channel(replica.target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        call = stub.WatchJob(S.WatchJobRequest(job_id=job_id, from_seq=from_seq), metadata=key(api_key))
        return [event async for event in call]


async def watch_until_cut(
    replica: Replica, api_key: str, job_id: str, seen: list[S.WatchJobResponse], *, kill_after_chunks: int
) -> grpc.StatusCode | None:
    """Watch on `replica`, SIGKILL it after that many token chunks; the status the stream ended with."""
    async with grpc.aio.insecure_channel(replica.target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        call = stub.WatchJob(S.WatchJobRequest(job_id=job_id), metadata=key(api_key))
        try:
            async for event in call:
                seen.append(event)
                if sum(e.WhichOneof("event") == "tokens" for e in seen) == kill_after_chunks:
                    replica.kill()
        except grpc.aio.AioRpcError as error:
            return error.code()
    return None


def text_of(events: list[S.WatchJobResponse]) -> str:
    return "".join(event.tokens.text for event in events if event.WhichOneof("event") == "tokens")


@pytest.fixture
async def url(postgres_cluster: PostgresCluster) -> str:
    return await postgres_cluster.new_database()


@pytest.fixture
async def keys(url: str) -> Keys:
    return await make_keys(url)


async def test_submit_on_one_replica_runs_on_another_and_streams_to_a_third(
    url: str, keys: Keys, tmp_path: Path
) -> None:
    async with replica_set(url, tmp_path, ("a", "b", "c")) as (_, (a, b, c)):
        async with ScriptedMiner(b.target, keys.miner) as miner:
            await miner.hello("miner-b", [MODEL])
            job = await submit(a, keys.client, "hello")
            watcher = asyncio.create_task(watch(c, keys.client, job.job_id))
            assign = (await miner.expect("assign")).assign
            assert (assign.job_id, assign.attempt) == (job.job_id, 1)
            await miner.started(job.job_id, 1)
            await miner.tokens(job.job_id, 1, "Hel", "lo", " there")
            # Nobody watches on a, which therefore skips b's token chunks until asked: GetJob reads them.
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while (running := await get_job(a, keys.client, job.job_id)).usage.completion_tokens < 3:
                assert asyncio.get_running_loop().time() < deadline, running
                await asyncio.sleep(0.05)
            assert running.status == S.JOB_STATE_RUNNING
            await miner.done(job.job_id, 1, "Hello there", completion_tokens=3)
            events = await asyncio.wait_for(watcher, DEADLINE)
        assert [event.seq for event in events] == list(range(1, len(events) + 1))  # in order, no gaps, no repeats
        assert text_of(events) == "Hello there"
        assert events[-1].state_change.status == S.JOB_STATE_COMPLETED
        for replica in (a, b, c):
            done = await until_state(replica, keys.client, job.job_id, S.JOB_STATE_COMPLETED)
            assert done.result == "Hello there"
        # Resume by sequence number on any replica, after the end as during the job.
        assert await watch(a, keys.client, job.job_id, from_seq=4) == events[3:]
        async with grpc.aio.insecure_channel(b.target) as channel:
            listed = await jobs_pb2_grpc.JobServiceStub(channel).ListJobs(
                S.ListJobsRequest(), metadata=key(keys.client)
            )
        assert [(found.job_id, found.status) for found in listed.jobs] == [(job.job_id, S.JOB_STATE_COMPLETED)]


async def test_a_replica_without_miners_accepts_jobs_others_can_run(url: str, keys: Keys, tmp_path: Path) -> None:
    async with (
        replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)),
        grpc.aio.insecure_channel(a.target) as channel,
    ):
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        request = submit_request("x", 4, queue=False)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SubmitJob(request, metadata=key(keys.client))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # no miner anywhere yet
        async with ScriptedMiner(b.target, keys.miner) as miner:
            await miner.hello("miner-b", [MODEL])
            # Replicas publish their miners with their lease (every third of it, here under a second).
            deadline = asyncio.get_running_loop().time() + DEADLINE
            codes = []
            job = None
            while job is None and asyncio.get_running_loop().time() < deadline:
                try:
                    job = (await stub.SubmitJob(request, metadata=key(keys.client))).job
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
                    await asyncio.sleep(0.1)
            assert job is not None, "a never learnt of b's miner"
            assert set(codes) <= {grpc.StatusCode.UNAVAILABLE}
            assert (await miner.expect("assign")).assign.job_id == job.job_id


async def test_cancel_on_one_replica_reaches_the_miner_on_another(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        async with ScriptedMiner(b.target, keys.miner) as miner:
            await miner.hello("miner-b", [MODEL])
            job = await submit(a, keys.client, "long one", 1000)
            assign = (await miner.expect("assign")).assign
            await miner.started(job.job_id, 1)
            await miner.tokens(job.job_id, 1, "partial")
            await until_state(a, keys.client, job.job_id, S.JOB_STATE_RUNNING)
            async with grpc.aio.insecure_channel(a.target) as channel:
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                cancel = asyncio.ensure_future(
                    stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client))
                )
                stop = (await miner.expect("cancel")).cancel
                assert (stop.job_id, stop.attempt) == (assign.job_id, 1)
                await miner.tokens(job.job_id, 1, " and the last")
                ack = miner_pb2.CancelAck(job_id=job.job_id, attempt=1, completion_tokens=2)
                await miner.send(miner_pb2.ConnectRequest(cancel_ack=ack))
                canceled = (await asyncio.wait_for(cancel, DEADLINE)).job
        assert canceled.status == S.JOB_STATE_CANCELED
        assert canceled.error == "canceled by the client"  # acknowledged: no "did not acknowledge"
        assert canceled.result == "partial and the last"  # every token sent before the ack is kept


async def test_racing_replicas_never_assign_one_job_twice(url: str, keys: Keys, tmp_path: Path) -> None:
    count = 30
    async with replica_set(url, tmp_path, ("a", "b", "c")) as (_, (a, b, c)):
        jobs = [await submit(c, keys.client, f"job {n}") for n in range(count)]
        attempts: list[tuple[str, int, str]] = []
        all_done = asyncio.Event()

        async def serve(miner: ScriptedMiner, name: str) -> None:
            while not all_done.is_set():
                try:
                    response = await asyncio.wait_for(miner.received.get(), 0.2)
                except TimeoutError:
                    continue
                if response is not None and response.WhichOneof("msg") == "assign":
                    job = response.assign
                    attempts.append((job.job_id, job.attempt, name))
                    await miner.done(job.job_id, job.attempt, "ok", completion_tokens=1)

        async with ScriptedMiner(a.target, keys.miner) as miner_a, ScriptedMiner(b.target, keys.miner) as miner_b:
            await miner_a.hello("miner-a", [MODEL], max_concurrency=2)
            await miner_b.hello("miner-b", [MODEL], max_concurrency=2)
            serving = [asyncio.create_task(serve(miner_a, "miner-a")), asyncio.create_task(serve(miner_b, "miner-b"))]
            # The miners stay connected until every job is completed: a miner leaving would requeue its jobs.
            for job in jobs:
                done = await until_state(c, keys.client, job.job_id, S.JOB_STATE_COMPLETED)
                assert done.attempt == 1
            all_done.set()
            await asyncio.gather(*serving)
        assigned = [job_id for job_id, _, _ in attempts]
        assert sorted(assigned) == sorted(job.job_id for job in jobs), attempts  # each once, none twice


async def test_a_burst_on_one_replica_does_not_starve_a_job_on_another(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        burst = [(await submit(a, keys.client, f"a{n}")).job_id for n in range(20)]
        lone = (await submit(b, keys.other_client, "b")).job_id
        await queued_on(a, keys.other_client, lone)
        async with ScriptedMiner(a.target, keys.miner) as miner:
            await miner.hello("one-slot", [MODEL], max_concurrency=1)
            order = []
            for _ in range(3):
                assign = (await miner.expect("assign")).assign
                await miner.done(assign.job_id, assign.attempt, "ok", completion_tokens=1)
                order.append(assign.job_id)
        assert lone in order[:2], order  # fair share: the other client's job goes first or second
        assert burst[0] in order[:2]


async def test_sigkill_of_a_replica_mid_job_loses_nothing(url: str, keys: Keys, tmp_path: Path) -> None:
    """The miner fails over, the job resumes elsewhere with its text, the watcher resumes by sequence
    number, and the job settles once."""
    async with replica_set(url, tmp_path, ("a", "b"), lease=2.0) as (_, replicas):
        by_pid = {replica.process.pid: replica for replica in replicas}
        backend = SyntheticBackend(models=(MODEL,), tokens_per_second=25)
        config = MinerConfig(
            coordinator=",".join(replica.target for replica in replicas),  # the address list (aitbc.targets)
            api_key=keys.miner,
            miner_id="failover-miner",
            reconnect_initial_backoff=0.05,
            reconnect_max_backoff=0.5,
        )
        agent = MinerAgent(config, backend)
        running = asyncio.create_task(agent.run())
        try:
            job = await submit(replicas[0], keys.client, "count", 100)
            db = await asyncpg.connect(url)
            try:
                deadline = asyncio.get_running_loop().time() + DEADLINE
                while not (
                    row := await db.fetchrow(
                        "SELECT replica_id, completion_tokens FROM jobs WHERE job_id = $1 AND state = 'running'",
                        job.job_id,
                    )
                ) or not await db.fetchval(
                    "SELECT count(*) FROM job_events WHERE job_id = $1 AND kind = 'tokens'", job.job_id
                ):
                    assert asyncio.get_running_loop().time() < deadline, "the job never started"
                    await asyncio.sleep(0.05)
                doomed = by_pid[int(row["replica_id"].rsplit("-", 2)[1])]
                survivor = next(replica for replica in replicas if replica is not doomed)
                # A watcher on the replica that runs the job, a few tokens in.
                seen: list[S.WatchJobResponse] = []
                cut = await watch_until_cut(doomed, keys.client, job.job_id, seen, kill_after_chunks=5)
                assert cut is grpc.StatusCode.UNAVAILABLE
                # The watcher reconnects elsewhere and resumes after the last event it saw.
                rest = await asyncio.wait_for(watch(survivor, keys.client, job.job_id, from_seq=seen[-1].seq + 1), 60)
                events = seen + rest
                assert [event.seq for event in events] == list(range(1, len(events) + 1))
                assert events[-1].state_change.status == S.JOB_STATE_COMPLETED
                done = await get_job(survivor, keys.client, job.job_id)
                assert text_of(events) == done.result
                assert done.attempt == 2  # taken over, resumed on the miner (now on the survivor)
                assert done.usage.completion_tokens == 100
                assert await db.fetchval("SELECT count(*) FROM receipts WHERE job_id = $1", job.job_id) == 1
                hold = await db.fetchrow("SELECT settled_attempt, charge FROM holds WHERE job_id = $1", job.job_id)
                assert hold["settled_attempt"] == 2
                assert hold["charge"] > 0
                kinds = await db.fetch("SELECT kind FROM ledger WHERE job_id = $1 ORDER BY seq", job.job_id)
                assert [row["kind"] for row in kinds] == ["hold", "settle"]  # held once, settled once
            finally:
                await db.close()
        finally:
            agent.stop()
            await asyncio.wait_for(running, DEADLINE)


async def test_a_miner_moving_to_another_replica_keeps_its_reputation(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        async with ScriptedMiner(a.target, keys.miner) as miner:
            await miner.hello("mover", [MODEL])
            for n in range(3):
                job = await submit(a, keys.client, f"job {n}")
                assign = (await miner.expect("assign")).assign
                await miner.done(job.job_id, assign.attempt, "ok", completion_tokens=1)
                await until_state(a, keys.client, job.job_id, S.JOB_STATE_COMPLETED)
        await asyncio.sleep(1.5)  # a writes reputation behind, within a second
        async with (
            ScriptedMiner(b.target, keys.miner) as miner,
            grpc.aio.insecure_channel(b.target) as channel,
        ):
            await miner.hello("mover", [MODEL])
            listed = await network_pb2_grpc.NetworkServiceStub(channel).ListMiners(
                network_pb2.ListMinersRequest(), metadata=key(keys.admin)
            )
        mover = next(summary for summary in listed.miners if summary.miner_id == "mover")
        assert mover.online
        assert mover.reputation.completions > 2.5  # a's three, not a fresh start on b


async def test_the_gateway_over_the_replica_list_keeps_serving_when_one_dies(
    url: str, keys: Keys, tmp_path: Path
) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        http = f"127.0.0.1:{free_port()}"
        gateway = EmbeddedGateway(f"{a.target},{b.target}", http)
        await asyncio.wait_for(gateway.start(), DEADLINE)
        try:
            async with httpx.AsyncClient(base_url=f"http://{http}", headers={"X-Api-Key": keys.client}) as client:
                body = {"prompt": "hi", "model": MODEL, "params": {"max_tokens": 4}, "queue_if_unavailable": True}
                submitted = await client.post("/v1/jobs", json=body)
                assert submitted.status_code == 201, submitted.text
                job_id = submitted.json()["job_id"]
                a.kill()
                await a.process.wait()
                # Calls spread over both replicas (round_robin); a's death costs none of the calls after it.
                answers = [(await client.get(f"/v1/jobs/{job_id}")).status_code for _ in range(10)]
        finally:
            await gateway.stop()
    assert answers == [200] * 10, answers


async def test_priorities_hold_across_replicas(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        async with grpc.aio.insecure_channel(a.target) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            low = S.SubmitJobRequest(prompt="low", model=MODEL, queue_if_unavailable=True, priority=S.JOB_PRIORITY_LOW)
            for _ in range(3):
                await stub.SubmitJob(low, metadata=key(keys.client))
        urgent = S.SubmitJobRequest(prompt="high", model=MODEL, queue_if_unavailable=True, priority=S.JOB_PRIORITY_HIGH)
        async with grpc.aio.insecure_channel(b.target) as channel:
            high = (await jobs_pb2_grpc.JobServiceStub(channel).SubmitJob(urgent, metadata=key(keys.client))).job
        await queued_on(a, keys.client, high.job_id)
        async with ScriptedMiner(a.target, keys.miner) as miner:
            await miner.hello("one-slot", [MODEL], max_concurrency=1)
            first = (await miner.expect("assign")).assign
        assert first.job_id == high.job_id  # submitted last, on the other replica, dispatched first


async def test_a_ttl_expires_a_job_once_whichever_replica_times_it(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b", "c")) as (_, (a, b, c)):
        async with grpc.aio.insecure_channel(a.target) as channel:
            request = S.SubmitJobRequest(
                prompt="nobody runs this", model=MODEL, queue_if_unavailable=True, ttl=duration_pb2.Duration(seconds=1)
            )
            job = (await jobs_pb2_grpc.JobServiceStub(channel).SubmitJob(request, metadata=key(keys.client))).job
        # Every replica holds a copy and times its TTL; one of them fails the job, and only one.
        failed = await until_state(c, keys.client, job.job_id, S.JOB_STATE_FAILED)
        assert failed.error.startswith("expired")
        events = await watch(b, keys.client, job.job_id)
        assert [event.state_change.status for event in events] == [S.JOB_STATE_PENDING, S.JOB_STATE_FAILED]


async def test_an_idempotency_key_names_one_job_across_replicas(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, replicas):
        request = submit_request("once", 8)
        request.idempotency_key = "order-42"

        async def submit_with_key(replica: Replica) -> str:
            async with grpc.aio.insecure_channel(replica.target) as channel:
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                return (await stub.SubmitJob(request, metadata=key(keys.client))).job.job_id

        # Retries racing on both replicas: one job, whichever insert won, and one hold on the account.
        job_ids = await asyncio.gather(*(submit_with_key(replicas[n % 2]) for n in range(8)))
        assert len(set(job_ids)) == 1, job_ids
        changed = S.SubmitJobRequest()
        changed.CopyFrom(request)
        changed.prompt = "another prompt"
        async with grpc.aio.insecure_channel(replicas[1].target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await jobs_pb2_grpc.JobServiceStub(channel).SubmitJob(changed, metadata=key(keys.client))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "idempotency_key" in (refused.value.details() or "")
    db = await asyncpg.connect(url)
    try:
        assert await db.fetchval("SELECT count(*) FROM jobs WHERE idempotency_key = 'order-42'") == 1
        assert await db.fetchval("SELECT count(*) FROM holds WHERE job_id = $1", job_ids[0]) == 1
    finally:
        await db.close()


async def test_queue_limits_count_every_replicas_jobs(url: str, keys: Keys, tmp_path: Path) -> None:
    limit = ("--max-queued-per-client", "3")
    async with replica_set(url, tmp_path, ("a", "b"), options=limit) as (_, (a, b)):
        queued = [await submit(a, keys.client, f"queued {n}") for n in range(3)]
        for job in queued:
            await queued_on(b, keys.client, job.job_id)
        async with grpc.aio.insecure_channel(b.target) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SubmitJob(submit_request("one too many"), metadata=key(keys.client))
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "3" in (refused.value.details() or "")
            await stub.SubmitJob(submit_request("someone else"), metadata=key(keys.other_client))  # its own bound
            await stub.CancelJob(S.CancelJobRequest(job_id=queued[0].job_id), metadata=key(keys.client))
        # The cancel on b leaves room on a once a's copy hears of it: one more job, and not two.
        deadline = asyncio.get_running_loop().time() + DEADLINE
        codes = []
        while True:
            try:
                await submit(a, keys.client, "room again")
                break
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                assert asyncio.get_running_loop().time() < deadline, codes
                await asyncio.sleep(0.05)
        assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED}
        with pytest.raises(grpc.aio.AioRpcError) as full_again:
            await submit(a, keys.client, "and no more")
        assert full_again.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def network_seen_from(replica: Replica, keys: Keys) -> tuple[dict[str, network_pb2.MinerSummary], int, int]:
    """ListMiners by id, the explorer's miners online, and the free slots ListModels shows for MODEL."""
    async with grpc.aio.insecure_channel(replica.target) as channel:
        listed = await network_pb2_grpc.NetworkServiceStub(channel).ListMiners(
            network_pb2.ListMinersRequest(), metadata=key(keys.client)
        )
        stats = await explorer_pb2_grpc.ExplorerServiceStub(channel).GetStats(explorer_pb2.GetStatsRequest())
        models = await models_pb2_grpc.ModelServiceStub(channel).ListModels(
            models_pb2.ListModelsRequest(), metadata=key(keys.client)
        )
    free = sum(model.free_slots for model in models.data if model.id == MODEL)
    return {miner.miner_id: miner for miner in listed.miners}, stats.miners_online, free


async def until_seen(replica: Replica, keys: Keys, check: str, test: object) -> None:
    """Poll until `test(miners, online, free)` holds: rosters travel with the lease renewal (a third of it)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not test(*(seen := await network_seen_from(replica, keys))):  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, f"{check}: {seen}"
        await asyncio.sleep(0.1)


async def ready(replica: Replica) -> int:
    async with grpc.aio.insecure_channel(replica.target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=miners_service(1))
        )
    return int(answer.status)


async def test_every_replica_lists_the_miners_of_every_replica(url: str, keys: Keys, tmp_path: Path) -> None:
    async with replica_set(url, tmp_path, ("a", "b")) as (_, (a, b)):
        assert await ready(a) == health_pb2.HealthCheckResponse.NOT_SERVING
        async with ScriptedMiner(b.target, keys.miner) as miner:
            await miner.hello("miner-b", [MODEL], max_concurrency=2, vram_gib=80)
            # b writes the miner's record behind within a second, and its roster at the next lease renewal:
            # a may list the record, offline, before it reads the roster.
            await until_seen(
                a, keys, "b's miner online on a", lambda m, online, free: "miner-b" in m and m["miner-b"].online
            )
            listed = (await network_seen_from(a, keys))[0]["miner-b"]
            assert (listed.online, listed.connection, listed.max_concurrency, listed.draining) == (
                True,
                "stream",
                2,
                False,
            )
            assert [(gpu.name, gpu.vram_bytes) for gpu in listed.gpus] == [("Scripted GPU", 80 << 30)]
            assert list(listed.models) == [MODEL]
            # The explorer's totals are cached for a second: they are public.
            await until_seen(a, keys, "counted online on a", lambda miners, online, free: online == 1)
            assert (await network_seen_from(a, keys))[2] == listed.free_slots == 2
            assert await ready(a) == health_pb2.HealthCheckResponse.SERVING  # a can run jobs: on b's miner
            async with grpc.aio.insecure_channel(a.target) as channel:
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                quote = await stub.QuoteJob(S.QuoteJobRequest(prompt="x", model=MODEL), metadata=key(keys.client))
                assert (quote.miner_id, quote.max_tokens > 0, quote.estimated_cost > 0) == ("miner-b", True, True)
                with pytest.raises(grpc.aio.AioRpcError) as no_payout:
                    await stub.QuoteJob(
                        S.QuoteJobRequest(prompt="x", model=MODEL, payout_address_required=True),
                        metadata=key(keys.client),
                    )
                assert "payout address" in (no_payout.value.details() or "")
            job = await submit(a, keys.client, "one slot taken")
            await miner.expect("assign")
            # a counts b's miner's slots from its copy of the job, not from the roster.
            await until_seen(a, keys, "a slot taken", lambda miners, online, free: miners["miner-b"].free_slots == 1)
            assert (await network_seen_from(a, keys))[2] == 1
            await miner.done(job.job_id, 1, "ok", completion_tokens=1)
            await until_state(a, keys.client, job.job_id, S.JOB_STATE_COMPLETED)
        await until_seen(
            a, keys, "b's miner offline on a", lambda miners, online, free: not miners["miner-b"].online and not online
        )
        # Its record as b wrote it behind (within a second), listed on a, which never met the miner.
        await until_seen(
            a, keys, "b's record on a", lambda miners, online, free: miners["miner-b"].reputation.completions > 0.9
        )
        assert await ready(a) == health_pb2.HealthCheckResponse.NOT_SERVING
