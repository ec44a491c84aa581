"""The job state machine: the one place that says which transitions exist."""

from __future__ import annotations

from enum import StrEnum

from aitbc.domain.errors import invalid_argument


class JobState(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED})

# Back to PENDING from ASSIGNED/RUNNING is a requeue: the miner went away or
# gave the job up, and another miner continues it.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.ASSIGNED, JobState.FAILED, JobState.CANCELED}),
    JobState.ASSIGNED: frozenset({JobState.RUNNING, JobState.PENDING, JobState.FAILED, JobState.CANCELED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.PENDING, JobState.FAILED, JobState.CANCELED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
}


def sources_of(target: JobState) -> frozenset[JobState]:
    """The states a job may be in for a transition to `target` to be legal."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[source]


_SPELLINGS = {"cancelled": JobState.CANCELED}


def parse_state(text: str, *, field: str = "status") -> JobState:
    """A state from its lowercase name; the seed's `cancelled` is accepted too."""
    normalized = text.strip().lower()
    if normalized in _SPELLINGS:
        return _SPELLINGS[normalized]
    try:
        return JobState(normalized)
    except ValueError:
        allowed = ", ".join(state.value for state in JobState)
        raise invalid_argument(field, f"unknown state {text!r}; expected one of {allowed}") from None
