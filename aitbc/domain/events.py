"""Job events: what watchers see, in sequence order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from aitbc.domain.states import JobState


class EventKind(StrEnum):
    STATE = "state"
    TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job. `seq` starts at 1 and has no gaps."""

    job_id: str
    seq: int
    time: datetime
    kind: EventKind
    state: JobState | None = None
    text: str = ""
    token_count: int = 0
    miner_id: str = ""
    attempt: int = 0
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""

    @property
    def is_final(self) -> bool:
        return self.kind is EventKind.STATE and self.state is not None and self.state.is_terminal
