"""What the store keeps about results (docs/results.md): checksums, share links, plans; and its methods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aitbc.domain.jobs import JobRecord
from aitbc.domain.retention import Plan


@dataclass(frozen=True, slots=True)
class ResultChecksums:
    """The sha256 of each file of a job's result package, as recorded when the job finished."""

    job_id: str
    files: dict[str, str]  # path -> sha256 hex
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ShareLinkRecord:
    """A share link as stored: the hash of its token, never the token."""

    share_id: str
    token_hash: str
    job_id: str
    owner_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class ResultStore(Protocol):
    async def record_checksums(self, job_id: str, files: Mapping[str, str], now: datetime) -> ResultChecksums:
        """Record a package's checksums once; a second call keeps (and returns) the first."""
        ...

    async def result_checksums(self, job_id: str) -> ResultChecksums | None: ...

    async def delete_result(self, job_id: str, now: datetime) -> JobRecord | None:
        """Clear a finished job's prompt, result and logs (token text), mark it deleted and revoke its share
        links, in one transaction. A job already deleted is left as it is. None when the job is unknown or has
        not finished."""
        ...

    async def expired_results(
        self, now: datetime, retention: Mapping[Plan, timedelta], default_plan: Plan, limit: int
    ) -> list[str]:
        """Finished jobs whose result is kept longer than the owner's plan allows, oldest first."""
        ...

    async def account_plans(self) -> dict[str, Plan]:
        """The plan of every account an admin gave one; any other account is on the default plan."""
        ...

    async def set_account_plan(self, account_id: str, plan: Plan, now: datetime) -> None: ...

    async def add_share_link(self, link: ShareLinkRecord) -> None: ...

    async def share_link(self, token_hash: str) -> ShareLinkRecord | None: ...

    async def share_links(self, job_id: str) -> list[ShareLinkRecord]:
        """A job's share links, newest first."""
        ...

    async def revoke_share_link(self, share_id: str, now: datetime) -> ShareLinkRecord | None:
        """Revoke a link once (a second time keeps the first time); None when no link has that id."""
        ...
