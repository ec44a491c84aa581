"""When and how long to wait before trying a failed call again, for both clients and both transports.

Retried: RESOURCE_EXHAUSTED and UNAVAILABLE (HTTP 429 and 503), which is also how either transport
reports a connection that failed or broke, on calls that are safe to repeat. The wait is the server's
(`RetryInfo`, `Retry-After`) where it names one, else exponential backoff with jitter. A server asking
for more than `max_retry_after` seconds gets its error raised at once: the caller decides then.

A small loop of its own rather than tenacity's: `aitbc status` must not load tenacity even when its
call fails (tests/test_imports.py), and this is all the SDK needs of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aitbc.client._status import StatusCode
from aitbc.client.errors import AitbcApiError

T = TypeVar("T")
log = logging.getLogger("aitbc.client")

RETRIED_CODES = frozenset({StatusCode.RESOURCE_EXHAUSTED, StatusCode.UNAVAILABLE})
# Refusals that waiting a moment does not change: no online miner could run the job
# (`queue_if_unavailable` is how to wait for one).
FINAL_REASONS = frozenset({"NO_ELIGIBLE_MINER"})

# Module attributes, so that tests can record the waits instead of sleeping them.
sleep: Callable[[float], None] = time.sleep
async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt (0: none)."""

    max_retries: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    max_retry_after: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {self.max_retries}")

    def delay(self, error: AitbcApiError, retry: int) -> float | None:
        """Seconds to wait before retry number `retry` (from 1) after `error`; None: raise it instead."""
        if retry > self.max_retries or error.code not in RETRIED_CODES or error.reason in FINAL_REASONS:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        # Half fixed, half random: retries spread out, and none comes back at once.
        backoff = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return backoff / 2 + random.uniform(0, backoff / 2)


class Retries:
    """The retries of one call (or of one stream, across its resumptions)."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self._policy = policy
        self._what = what
        self._retry = 0

    def reset(self) -> None:
        """The call made progress (a stream delivered an event): the next failure starts the count anew."""
        self._retry = 0

    def delay(self, error: AitbcApiError) -> float:
        """How long to wait before trying again; re-raises `error` when it is not to be retried."""
        self._retry += 1
        delay = self._policy.delay(error, self._retry)
        if delay is None:
            raise error
        log.info("%s failed (%s); retry %d in %.2fs", self._what, error, self._retry, delay)
        return delay


def too_late(error: AitbcApiError) -> AitbcApiError:
    """What a stream whose deadline comes before its next retry raises (a wait then times out)."""
    detail = f"the call failed with too little time left to retry it: {error}"
    return AitbcApiError(StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", detail)


def call(policy: RetryPolicy, what: str, attempt: Callable[[], T]) -> T:
    """`attempt()`, retried as the policy says."""
    retries = Retries(policy, what)
    while True:
        try:
            return attempt()
        except AitbcApiError as error:
            sleep(retries.delay(error))


async def call_async(policy: RetryPolicy, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`await attempt()`, retried as the policy says."""
    retries = Retries(policy, what)
    while True:
        try:
            return await attempt()
        except AitbcApiError as error:
            await async_sleep(retries.delay(error))
