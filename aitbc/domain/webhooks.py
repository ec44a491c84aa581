"""Webhooks: event names, signatures, the retry schedule and which URLs may receive deliveries.

Pure: the coordinator resolves host names and sends; this decides what is allowed and what is signed.
A receiver checks a delivery with `verify_signature` (or the same five lines of its own: docs/history.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from aitbc.domain.errors import invalid_argument
from aitbc.domain.states import JobState

JOB_EVENTS: dict[JobState, str] = {
    JobState.COMPLETED: "job.completed",
    JobState.FAILED: "job.failed",
    JobState.CANCELED: "job.canceled",
}
TEST_EVENT = "webhook.test"
SIGNATURE_HEADER = "AITBC-Signature"
DELIVERY_HEADER = "AITBC-Delivery"
EVENT_HEADER = "AITBC-Event"
MAX_URL_CHARS = 2048
MAX_WEBHOOKS_PER_ACCOUNT = 20
# Retries: 10 s, 20 s, 40 s ... at most an hour apart, each shortened by up to half at random (so that
# receivers coming back are not hit by every coordinator at once), for up to a day after the event.
FIRST_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 3600.0
RETRY_WINDOW = timedelta(days=1)
# A receiver that takes longer than this is taken as failed (and retried).
DELIVERY_TIMEOUT_SECONDS = 10.0
# Receivers refuse signatures older than this, against replays (what `verify_signature` checks).
SIGNATURE_TOLERANCE_SECONDS = 300


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    webhook_id: str
    owner_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    delivery_id: str
    webhook_id: str
    event: str
    job_id: str
    # The event's JSON without its id: {"type", "created_at", "data"}; the body adds the id in front.
    payload: str
    status: DeliveryStatus
    created_at: datetime
    attempts: int = 0
    last_status_code: int = 0
    last_latency_ms: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def body(self) -> bytes:
        """What is POSTed, the same bytes on every attempt: the payload with the delivery id first."""
        return ('{"id":"' + self.delivery_id + '",' + self.payload.lstrip()[1:]).encode()


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(12)


def new_delivery_id() -> str:
    return "evt_" + secrets.token_hex(12)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_events(events: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not events:
        raise invalid_argument("events", f"name at least one of {', '.join(JOB_EVENTS.values())}")
    allowed = set(JOB_EVENTS.values())
    for event in events:
        if event not in allowed:
            raise invalid_argument(
                "events", f"unknown event {event!r}; expected one of {', '.join(JOB_EVENTS.values())}"
            )
    return tuple(dict.fromkeys(events))


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials in it; returns its host."""
    if not url:
        raise invalid_argument("url", "is required")
    if len(url) > MAX_URL_CHARS:
        raise invalid_argument("url", f"at most {MAX_URL_CHARS} characters, got {len(url)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise invalid_argument("url", f"is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise invalid_argument("url", f"must be an http or https URL, got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise invalid_argument("url", "has no host")
    if parts.username is not None or parts.password is not None:
        raise invalid_argument("url", "must not carry credentials; authenticate deliveries by their signature")
    if port == 0:
        raise invalid_argument("url", "port 0 cannot be reached")
    return parts.hostname


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet: not loopback, private, link-local, reserved..."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: `t=UNIX,v1=HEX`, HMAC-SHA256 of `t.body` (as Stripe signs)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """Whether `header` signs `body` under `secret`, made at most `tolerance` seconds from `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Seconds before the attempt after `attempts` failed ones: exponential, capped, with jitter."""
    delay = min(FIRST_RETRY_SECONDS * float(2 ** min(attempts - 1, 30)), MAX_RETRY_SECONDS)
    jitter: float = rng.uniform(0.5, 1.0)
    return delay * jitter
