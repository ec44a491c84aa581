"""Result packages, checksums, delete, share links and retention through the coordinator's parts.

A real SQLite file and a ManualClock: link expiry and the retention sweep are tested by moving time.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import Assign, Cancel, MinerInfo, MinerSession
from aitbc.domain.canonical import sha256_hex
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.jobs import JobRecord, JobSpec
from aitbc.domain.receipts import Receipt
from aitbc.domain.retention import Plan, hash_share_token
from aitbc.domain.states import JobState
from aitbc.domain.verify import verify_receipt
from aitbc.store.base import Store
from tests.coordinator.test_parts import ADMIN, CLIENT, MINER, OTHER_CLIENT, next_command, started
from tests.coordinator.test_settlement import CONFIG, priced_spec

DAY = 86_400.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def coordinator(store: Store, clock: ManualClock) -> AsyncIterator[Coordinator]:
    async with started(store, clock, CONFIG) as coordinator:
        await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000_000)
        yield coordinator


async def miner(coordinator: Coordinator, miner_id: str = "miner-1") -> MinerSession:
    info = MinerInfo(miner_id=miner_id, models=frozenset({"priced", "tiny"}), max_concurrency=4)
    session = await coordinator.attach_miner(MINER, info)
    await next_command(session)  # the welcome
    return session


async def finished_job(coordinator: Coordinator, session: MinerSession, spec: JobSpec | None = None) -> JobRecord:
    """A priced job that ran on `session`, streamed two chunks and completed (so it has a receipt)."""
    job = await coordinator.submit(CLIENT, spec or priced_spec())
    assert isinstance(await next_command(session), Assign)
    await coordinator.reports.started(session, job.job_id, 1, 3)
    await coordinator.reports.tokens(session, job.job_id, 1, "Hello", 1)
    await coordinator.reports.tokens(session, job.job_id, 1, ", world", 2)
    done = await coordinator.reports.done(
        session, job.job_id, 1, output="Hello, world", prompt_tokens=3, completion_tokens=3, finish_reason="stop"
    )
    assert done is not None
    assert done.receipt_id
    return done


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_the_package_holds_metadata_result_logs_artifacts_and_the_signed_receipt(
    coordinator: Coordinator,
) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    file = await coordinator.results.download(CLIENT, job.job_id, "")
    assert (file.filename, file.media_type) == (f"job_{job.job_id.removeprefix('job_')}.zip", "application/zip")
    files = unzip(file.data)
    assert sorted(files) == [
        "artifacts/",
        "logs/stderr.log",
        "logs/stdout.log",
        "output.json",
        "receipt.json",
        "result.txt",
    ]
    assert files["result.txt"] == b"Hello, world"
    output = json.loads(files["output.json"])
    assert output["job_id"] == job.job_id
    assert (output["status"], output["attempts"], output["miner_id"]) == ("completed", 1, "miner-1")
    assert output["usage"] == {"prompt_tokens": 3, "completion_tokens": 3}
    assert output["receipt_id"] == job.receipt_id
    assert "prompt" not in output
    stdout = files["logs/stdout.log"].decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stdout] == [
        'attempt=1 seq=4 tokens=1 "Hello"',
        'attempt=1 seq=5 tokens=2 ", world"',
    ]
    stderr = files["logs/stderr.log"].decode()
    assert [line.split(" ")[1] for line in stderr.splitlines()] == ["pending", "assigned", "running", "completed"]
    assert "miner=miner-1" in stderr
    assert "completion_tokens=3" in stderr
    receipt = Receipt.from_json(json.loads(files["receipt.json"]))
    verification = verify_receipt(receipt, coordinator_key=coordinator.public_key, output_text="Hello, world")
    assert verification.ok, verification.failed


async def test_json_and_txt_are_single_forms_and_an_unknown_format_names_the_field(coordinator: Coordinator) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    text = await coordinator.results.download(CLIENT, job.job_id, "txt")
    assert (text.media_type, text.data) == ("text/plain; charset=utf-8", b"Hello, world")
    document = await coordinator.results.download(CLIENT, job.job_id, "JSON")
    assert document.filename.endswith(".json")
    assert json.loads(document.data)["result"] == "Hello, world"
    with pytest.raises(AitbcError) as caught:
        await coordinator.results.download(CLIENT, job.job_id, "xml")
    assert (caught.value.reason, caught.value.field) == (Reason.INVALID_ARGUMENT, "format")
    assert "expected one of zip, json, txt" in caught.value.message


async def test_checksums_are_recorded_at_completion_and_match_every_download(
    coordinator: Coordinator, store: Store, clock: ManualClock
) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    await coordinator.results.recorded()
    recorded = await store.result_checksums(job.job_id)
    assert recorded is not None
    assert recorded.recorded_at == job.completed_at
    await clock.advance(3600)
    files = unzip((await coordinator.results.download(CLIENT, job.job_id, "zip")).data)
    assert recorded.files == {path: sha256_hex(data) for path, data in files.items() if not path.endswith("/")}
    _, answered = await coordinator.results.checksums(CLIENT, job.job_id)
    assert answered == recorded


async def test_unknown_unfinished_and_other_tenants_jobs_are_refused(coordinator: Coordinator) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    unfinished = await coordinator.submit(CLIENT, priced_spec())  # assigned to the miner, not finished
    cases = [
        (CLIENT, "job_000000000000000000000000", Reason.JOB_NOT_FOUND),
        (OTHER_CLIENT, job.job_id, Reason.JOB_NOT_FOUND),  # another tenant's job looks like a missing one
        (CLIENT, unfinished.job_id, Reason.JOB_NOT_FINISHED),
    ]
    for principal, job_id, reason in cases:
        calls = [
            coordinator.results.download(principal, job_id, "zip"),
            coordinator.results.checksums(principal, job_id),
            coordinator.results.delete(principal, job_id, force=False),
        ]
        if reason is Reason.JOB_NOT_FOUND:
            calls += [
                coordinator.results.share(principal, job_id, "7d"),
                coordinator.results.share_links(principal, job_id),
            ]
        for call in calls:
            with pytest.raises(AitbcError) as caught:
                await call
            assert (caught.value.reason, caught.value.field) == (reason, "job_id"), call


async def test_delete_keeps_a_tombstone_and_the_receipt_stays_valid(coordinator: Coordinator, store: Store) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    link, token = await coordinator.results.share(CLIENT, job.job_id, "7d")
    deleted = await coordinator.results.delete(CLIENT, job.job_id, force=False)
    assert deleted.result_deleted_at is not None
    tombstone = await coordinator.get(CLIENT, job.job_id)
    assert (tombstone.spec.prompt, tombstone.result) == ("", "")
    assert (tombstone.state, tombstone.prompt_tokens, tombstone.completion_tokens) == (JobState.COMPLETED, 3, 3)
    assert (tombstone.created_at, tombstone.completed_at, tombstone.receipt_id) == (
        job.created_at,
        job.completed_at,
        job.receipt_id,
    )
    assert tombstone.result_expires_at == tombstone.result_deleted_at
    # The logs' text is gone; the events (times, token counts) stay, so history keeps its shape.
    events = await store.events(job.job_id)
    assert [event.text for event in events] == [""] * len(events)
    assert [event.token_count for event in events if event.token_count] == [1, 2]
    # The receipt holds hashes, not text: it still verifies against the output it was issued for.
    receipt = await store.receipt(job.receipt_id)
    assert receipt is not None
    assert verify_receipt(receipt, coordinator_key=coordinator.public_key, output_text="Hello, world").ok
    for call in (coordinator.results.download(CLIENT, job.job_id, "zip"), coordinator.results.shared(token)):
        with pytest.raises(AitbcError) as caught:
            await call
        assert caught.value.reason is Reason.RESULT_DELETED
    [dead] = await coordinator.results.share_links(CLIENT, job.job_id)
    assert (dead.share_id, dead.revoked_at) == (link.share_id, deleted.result_deleted_at)
    # Deleting again answers the same tombstone.
    again = await coordinator.results.delete(CLIENT, job.job_id, force=False)
    assert again.result_deleted_at == deleted.result_deleted_at


async def test_a_running_job_is_deleted_only_with_force_which_cancels_it_first(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    session = await miner(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    assert isinstance(await next_command(session), Assign)
    await coordinator.reports.tokens(session, job.job_id, 1, "part", 1)
    with pytest.raises(AitbcError) as caught:
        await coordinator.results.delete(CLIENT, job.job_id, force=False)
    assert (caught.value.reason, caught.value.field) == (Reason.JOB_NOT_FINISHED, "job_id")
    assert caught.value.advice == "set force to cancel it first"
    deleting = asyncio.create_task(coordinator.results.delete(CLIENT, job.job_id, force=True))
    assert isinstance(await next_command(session), Cancel)
    coordinator.reports.cancel_acknowledged(session, job.job_id, 1, 1)
    deleted = await deleting
    assert (deleted.state, deleted.result, deleted.completion_tokens) == (JobState.CANCELED, "", 1)
    assert deleted.result_deleted_at is not None


async def test_share_links_open_without_a_key_until_they_expire_or_are_revoked(
    coordinator: Coordinator, store: Store, clock: ManualClock
) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    link, token = await coordinator.results.share(CLIENT, job.job_id, "1d")
    assert len(token) >= 43  # 256 bits of base64url after the prefix
    assert coordinator.results.link_url(token) == f"http://127.0.0.1:8080/v1/shared/{token}"
    # Only the hash is stored.
    stored = await store.share_link(hash_share_token(token))
    assert stored == link
    assert stored is not None
    assert token not in repr(stored)
    shown, _ = await coordinator.results.shared(token)
    assert (shown.job_id, shown.state, shown.result) == (job.job_id, JobState.COMPLETED, "Hello, world")
    await clock.advance(DAY)
    with pytest.raises(AitbcError) as expired:
        await coordinator.results.shared(token)
    assert expired.value.reason is Reason.SHARE_LINK_EXPIRED
    assert "expired at" in expired.value.message

    second, second_token = await coordinator.results.share(CLIENT, job.job_id, "")
    assert second.expires_at - second.created_at == timedelta(days=7)
    revoked = await coordinator.results.revoke(CLIENT, job.job_id, second.share_id)
    assert revoked.revoked_at is not None
    with pytest.raises(AitbcError) as gone:
        await coordinator.results.shared(second_token)
    assert gone.value.reason is Reason.SHARE_LINK_REVOKED
    listed = await coordinator.results.share_links(CLIENT, job.job_id)
    assert [(item.share_id, coordinator.results.status_of(item).value) for item in listed] == [
        (second.share_id, "revoked"),
        (link.share_id, "expired"),
    ]
    with pytest.raises(AitbcError) as unknown:
        await coordinator.results.shared("share_not-a-token")
    assert unknown.value.reason is Reason.SHARE_LINK_NOT_FOUND
    with pytest.raises(AitbcError) as not_theirs:
        await coordinator.results.revoke(OTHER_CLIENT, job.job_id, second.share_id)
    assert not_theirs.value.reason is Reason.JOB_NOT_FOUND


@pytest.mark.parametrize("expires", ["7", "7w", "-1d", "0d", "366d", "soon", "1.5d"])
async def test_a_bad_expiry_names_the_field(coordinator: Coordinator, expires: str) -> None:
    job = await finished_job(coordinator, await miner(coordinator))
    with pytest.raises(AitbcError) as caught:
        await coordinator.results.share(CLIENT, job.job_id, expires)
    assert (caught.value.reason, caught.value.field) == (Reason.INVALID_ARGUMENT, "expires")


async def test_the_sweeper_deletes_results_past_their_plans_retention(
    coordinator: Coordinator, store: Store, clock: ManualClock
) -> None:
    session = await miner(coordinator)
    free = await finished_job(coordinator, session)
    await coordinator.retention.set_plan(ADMIN, OTHER_CLIENT.owner_id, Plan.PRO)
    await coordinator.credit(ADMIN, OTHER_CLIENT.owner_id, 1_000_000)
    pro = await coordinator.submit(OTHER_CLIENT, priced_spec())
    assert isinstance(await next_command(session), Assign)
    await coordinator.reports.done(
        session, pro.job_id, 1, output="pro", prompt_tokens=3, completion_tokens=1, finish_reason="stop"
    )
    shown = await coordinator.get(CLIENT, free.job_id)
    assert free.completed_at is not None
    assert shown.result_expires_at == free.completed_at + timedelta(days=7)
    pro_shown = await coordinator.get(OTHER_CLIENT, pro.job_id)
    assert pro_shown.completed_at is not None
    assert pro_shown.result_expires_at == pro_shown.completed_at + timedelta(days=30)

    await clock.advance(7 * DAY)
    await coordinator.retention.swept()
    await clock.advance(3600)  # the first hourly sweep past the free plan's week
    await coordinator.retention.swept()
    assert (await coordinator.get(CLIENT, free.job_id)).result_deleted_at is not None
    assert (await coordinator.get(OTHER_CLIENT, pro.job_id)).result_deleted_at is None
    with pytest.raises(AitbcError) as caught:
        await coordinator.results.download(CLIENT, free.job_id, "zip")
    assert caught.value.reason is Reason.RESULT_DELETED

    # An upgrade keeps a result longer; a downgrade lets the next sweep take it.
    await coordinator.retention.set_plan(ADMIN, OTHER_CLIENT.owner_id, Plan.FREE)
    assert await coordinator.retention.sweep() == [pro.job_id]
    assert await store.expired_results(clock.now(), {Plan.FREE: timedelta(0)}, Plan.FREE, 10) == []


async def test_plans_need_an_admin_and_survive_a_restart(
    store: Store, clock: ManualClock, coordinator: Coordinator
) -> None:
    with pytest.raises(AitbcError) as caught:
        await coordinator.retention.set_plan(CLIENT, CLIENT.owner_id, Plan.ENTERPRISE)
    assert caught.value.reason is Reason.PERMISSION_DENIED
    await coordinator.retention.set_plan(ADMIN, CLIENT.owner_id, Plan.ENTERPRISE)
    async with started(store, clock, CONFIG) as restarted:
        assert restarted.retention.plan_of(CLIENT.owner_id) is Plan.ENTERPRISE
        assert restarted.retention.plan_of("someone-new") is Plan.FREE


async def test_a_link_to_a_running_job_shows_its_output_so_far(coordinator: Coordinator) -> None:
    session = await miner(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    assert isinstance(await next_command(session), Assign)
    await coordinator.reports.started(session, job.job_id, 1, 3)
    await coordinator.reports.tokens(session, job.job_id, 1, "so far", 2)
    _, token = await coordinator.results.share(CLIENT, job.job_id, "1h")
    shown, _ = await coordinator.results.shared(token)
    assert (shown.state, shown.result) == (JobState.RUNNING, "so far")
