"""What owners do with finished jobs' results: download, checksums, delete, share links (docs/results.md).

The package is rebuilt from the store on every download (`aitbc.domain.result_package`); its checksums
are recorded once, when the job reaches its final state, in a task of their own so the job path never
waits for them (a job whose recording a crash cut short gets them on first request). Deleting keeps the
job as a tombstone; the retention sweeper deletes through `erase` exactly as an owner does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime

from aitbc.coordinator.access import require_role
from aitbc.coordinator.client_jobs import ClientJobs
from aitbc.coordinator.clock import Clock
from aitbc.coordinator.job_table import JobTable
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.result_package import PackedFile, ResultFormat, checksums, package_files, packed
from aitbc.domain.retention import (
    LinkStatus,
    hash_share_token,
    link_status,
    new_share_token,
    parse_lifetime,
    share_id,
)
from aitbc.store.base import Store, StoreUnavailableError
from aitbc.store.result_records import ResultChecksums, ShareLinkRecord

log = logging.getLogger(__name__)

SHARED_PATH = "/v1/shared/"


class Results:
    def __init__(self, store: Store, clock: Clock, jobs: JobTable, clients: ClientJobs, *, public_url: str) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock
        self._clients = clients
        self._public_url = public_url.rstrip("/")
        self._recording: set[asyncio.Task[None]] = set()

    # Checksums at completion

    def finished(self, job_id: str) -> None:
        """A job reached its final state: record its package's checksums, without holding up the caller."""
        task = asyncio.create_task(self._record_quietly(job_id), name=f"checksums-{job_id}")
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def recorded(self) -> None:
        """Return once the checksums being recorded are stored (shutdown waits before the store closes)."""
        if self._recording:
            await asyncio.wait(set(self._recording))

    async def _record_quietly(self, job_id: str) -> None:
        try:
            job = await self._store.get_job(job_id)
            if job is not None and job.state.is_terminal and job.result_deleted_at is None:
                await self._record(job)
        except StoreUnavailableError as error:
            # Not lost: recorded on the first download or checksum request instead.
            log.warning("checksums of %s not recorded yet: %s", job_id, error)
        except Exception:
            log.exception("recording the checksums of %s failed", job_id)

    async def _record(self, job: JobRecord) -> ResultChecksums:
        files = await self._files(job)
        return await self._store.record_checksums(job.job_id, checksums(files), self._clock.now())

    async def _files(self, job: JobRecord) -> dict[str, bytes]:
        events = await self._store.events(job.job_id)
        receipt = await self._store.receipt(job.receipt_id) if job.receipt_id else None
        return package_files(job, events, receipt)

    # The owner's calls

    async def _finished_job(self, principal: Principal, job_id: str) -> JobRecord:
        """The caller's finished job whose result still exists."""
        require_role(principal, Role.CLIENT)
        job = await self._clients.get(principal, job_id)
        if not job.state.is_terminal:
            raise AitbcError(
                Reason.JOB_NOT_FINISHED,
                f"job {job_id!r} is {job.state.value}; its result exists once it has finished",
                field="job_id",
            )
        if job.result_deleted_at is not None:
            raise result_deleted(job)
        return job

    async def download(self, principal: Principal, job_id: str, form: str) -> PackedFile:
        result_format = ResultFormat.parse(form)
        job = await self._finished_job(principal, job_id)
        return packed(job, await self._files(job), result_format)

    async def checksums(self, principal: Principal, job_id: str) -> tuple[JobRecord, ResultChecksums]:
        job = await self._finished_job(principal, job_id)
        recorded = await self._store.result_checksums(job_id)
        return job, recorded or await self._record(job)

    async def delete(self, principal: Principal, job_id: str, *, force: bool) -> JobRecord:
        """Delete a job's result; an unfinished job only with `force`, which cancels it first."""
        require_role(principal, Role.CLIENT)
        job = await self._clients.get(principal, job_id)
        if not job.state.is_terminal:
            if not force:
                raise AitbcError(
                    Reason.JOB_NOT_FINISHED,
                    f"job {job_id!r} is {job.state.value}; only a finished job's result can be deleted",
                    field="job_id",
                    advice="set force to cancel it first",
                )
            with contextlib.suppress(AitbcError):
                await self._clients.cancel(principal, job_id)  # it may have finished meanwhile: fine too
        return await self.erase(job_id)

    async def erase(self, job_id: str) -> JobRecord:
        """Delete a finished job's prompt, result and logs, keeping the tombstone (also the sweeper's way)."""
        deleted = await self._store.delete_result(job_id, self._clock.now())
        if deleted is None:
            raise AitbcError(Reason.JOB_NOT_FINISHED, f"job {job_id!r} has not finished", field="job_id")
        log.info("deleted the result of %s", job_id)
        return deleted

    # Share links

    async def share(self, principal: Principal, job_id: str, expires: str) -> tuple[ShareLinkRecord, str]:
        """A new link to the job's status and result, and its token (which is not kept)."""
        lifetime = parse_lifetime(expires)
        require_role(principal, Role.CLIENT)
        job = await self._clients.get(principal, job_id)
        if job.result_deleted_at is not None:
            raise result_deleted(job)
        token = new_share_token()
        token_hash = hash_share_token(token)
        now = self._clock.now()
        link = ShareLinkRecord(
            share_id=share_id(token_hash),
            token_hash=token_hash,
            job_id=job.job_id,
            owner_id=job.owner_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        await self._store.add_share_link(link)
        return link, token

    def link_path(self, token: str) -> str:
        return SHARED_PATH + token

    def link_url(self, token: str) -> str:
        return self._public_url + self.link_path(token)

    async def share_links(self, principal: Principal, job_id: str) -> list[ShareLinkRecord]:
        require_role(principal, Role.CLIENT)
        job = await self._clients.get(principal, job_id)
        return await self._store.share_links(job.job_id)

    async def revoke(self, principal: Principal, job_id: str, link_id: str) -> ShareLinkRecord:
        if not link_id:
            raise invalid_argument("share_id", "is required")
        links = {link.share_id: link for link in await self.share_links(principal, job_id)}
        if link_id not in links:
            raise AitbcError(
                Reason.SHARE_LINK_NOT_FOUND, f"job {job_id!r} has no share link {link_id!r}", field="share_id"
            )
        revoked = await self._store.revoke_share_link(link_id, self._clock.now())
        assert revoked is not None
        return revoked

    def status_of(self, link: ShareLinkRecord) -> LinkStatus:
        return link_status(self._clock.now(), link.expires_at, link.revoked_at)

    async def shared(self, token: str) -> tuple[JobRecord, ShareLinkRecord]:
        """What a link shows, to anyone who has it: 404 for an unknown token, 410 for a dead link."""
        if not token:
            raise invalid_argument("token", "is required")
        link = await self._store.share_link(hash_share_token(token))
        job = None if link is None else await self._store.get_job(link.job_id)
        if link is None or job is None:
            raise AitbcError(Reason.SHARE_LINK_NOT_FOUND, "no share link has this token", field="token")
        if job.result_deleted_at is not None:
            raise result_deleted(job)
        status = self.status_of(link)
        if status is LinkStatus.REVOKED:
            assert link.revoked_at is not None
            message = f"this share link was revoked by its owner at {_rfc3339(link.revoked_at)}"
            raise AitbcError(Reason.SHARE_LINK_REVOKED, message, field="token")
        if status is LinkStatus.EXPIRED:
            message = f"this share link expired at {_rfc3339(link.expires_at)}"
            raise AitbcError(Reason.SHARE_LINK_EXPIRED, message, field="token", advice="ask the owner for a new link")
        live = self._jobs.get(job.job_id)
        if live is not None:  # a running job: its output so far lives in memory, not yet in the record
            return replace(live.record, result=live.text), link
        return job, link


def result_deleted(job: JobRecord) -> AitbcError:
    assert job.result_deleted_at is not None
    return AitbcError(
        Reason.RESULT_DELETED,
        f"the result of job {job.job_id!r} was deleted at {_rfc3339(job.result_deleted_at)}",
        field="job_id",
    )


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
