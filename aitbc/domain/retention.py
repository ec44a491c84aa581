"""How long results are kept (by the account's plan), how long share links live, and their tokens."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from aitbc.domain.errors import invalid_argument
from aitbc.domain.keys import hash_key


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"

    @classmethod
    def parse(cls, text: str, *, field: str = "plan") -> Plan:
        try:
            return cls(text.strip().lower())
        except ValueError:
            expected = ", ".join(member.value for member in cls)
            raise invalid_argument(field, f"unknown plan {text!r}; expected one of {expected}") from None


# The seed's table: how long a finished job's result stays downloadable, by plan.
RETENTION: dict[Plan, timedelta] = {
    Plan.FREE: timedelta(days=7),
    Plan.PRO: timedelta(days=30),
    Plan.ENTERPRISE: timedelta(days=90),
}
DEFAULT_PLAN = Plan.FREE


def result_expires_at(finished_at: datetime, plan: Plan) -> datetime:
    return finished_at + RETENTION[plan]


# Share links: "7d" unless asked otherwise, a year at most (the result is gone long before on any plan).
DEFAULT_SHARE_LIFETIME = timedelta(days=7)
MAX_SHARE_LIFETIME = timedelta(days=365)
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_lifetime(text: str, *, field: str = "expires") -> timedelta:
    """A link's lifetime from "30m", "12h", "7d" ("" is the default); INVALID_ARGUMENT naming `field` otherwise."""
    if not text:
        return DEFAULT_SHARE_LIFETIME
    match = _DURATION.match(text)
    if match is None:
        raise invalid_argument(field, f"expected a number and a unit, s, m, h or d (like 7d or 12h), got {text!r}")
    lifetime = timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2].lower()])
    if not timedelta(0) < lifetime <= MAX_SHARE_LIFETIME:
        raise invalid_argument(field, f"must be more than 0 and at most {MAX_SHARE_LIFETIME.days}d, got {text!r}")
    return lifetime


# 256 random bits, well past the 128 an unguessable link needs; only the sha256 of a token is stored.
SHARE_TOKEN_BYTES = 32


def new_share_token() -> str:
    return f"share_{secrets.token_urlsafe(SHARE_TOKEN_BYTES)}"


def hash_share_token(token: str) -> str:
    return hash_key(token)


def share_id(token_hash: str) -> str:
    """The name a link is listed and revoked by: derived from the hash, so it reveals nothing of the token."""
    return f"shr_{token_hash[:16]}"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def link_status(now: datetime, expires_at: datetime, revoked_at: datetime | None) -> LinkStatus:
    if revoked_at is not None:
        return LinkStatus.REVOKED
    return LinkStatus.EXPIRED if now >= expires_at else LinkStatus.ACTIVE
