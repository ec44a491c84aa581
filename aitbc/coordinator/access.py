"""Who may do what: roles, job ownership and miner ownership, in one place."""

from __future__ import annotations

from aitbc.domain.errors import AitbcError, Reason, job_not_found
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role


def require_role(principal: Principal, role: Role) -> None:
    """Admins may make every call; everyone else only their role's."""
    if principal.role is not role and principal.role is not Role.ADMIN:
        raise AitbcError(
            Reason.PERMISSION_DENIED, f"this call needs a {role.value} key; the key given is a {principal.role} key"
        )


def check_job_owner(principal: Principal, record: JobRecord) -> None:
    # Another client's job looks exactly like a missing one.
    if not principal.may_see(record.owner_id):
        raise job_not_found(record.job_id)


def owns_miner(principal: Principal, miner_owner_id: str) -> bool:
    return principal.role is Role.ADMIN or principal.owner_id == miner_owner_id


def check_miner_owner(principal: Principal, miner_id: str, miner_owner_id: str) -> None:
    if not owns_miner(principal, miner_owner_id):
        raise AitbcError(
            Reason.PERMISSION_DENIED,
            f"miner id {miner_id!r} is in use with another account's key",
            field="miner_id",
        )
