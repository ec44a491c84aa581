"""The domain core: pure Python, no transport, no storage, no I/O."""

from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams
from aitbc.domain.keys import Principal, Role
from aitbc.domain.states import JobState

__all__ = [
    "AitbcError",
    "EventKind",
    "JobEvent",
    "JobRecord",
    "JobSpec",
    "JobState",
    "Principal",
    "Reason",
    "Role",
    "SamplingParams",
]
