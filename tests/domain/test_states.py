from __future__ import annotations

import itertools

import pytest

from aitbc.domain.errors import AitbcError
from aitbc.domain.states import TERMINAL_STATES, JobState, can_transition, parse_state, sources_of


def test_lifecycle_follows_the_seed_diagram() -> None:
    happy_path = [JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING, JobState.COMPLETED]
    for source, target in itertools.pairwise(happy_path):
        assert can_transition(source, target)
    for state in (JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING):
        assert can_transition(state, JobState.FAILED)
        assert can_transition(state, JobState.CANCELED)


def test_terminal_states_are_final() -> None:
    for terminal in TERMINAL_STATES:
        assert terminal.is_terminal
        assert not any(can_transition(terminal, target) for target in JobState)


def test_no_shortcuts() -> None:
    assert not can_transition(JobState.PENDING, JobState.RUNNING)
    assert not can_transition(JobState.PENDING, JobState.COMPLETED)
    assert not can_transition(JobState.ASSIGNED, JobState.COMPLETED)
    assert sources_of(JobState.COMPLETED) == {JobState.RUNNING}
    assert sources_of(JobState.PENDING) == {JobState.ASSIGNED, JobState.RUNNING}


@pytest.mark.parametrize(("text", "state"), [("cancelled", JobState.CANCELED), (" Running ", JobState.RUNNING)])
def test_parse_accepts_seed_spellings(text: str, state: JobState) -> None:
    assert parse_state(text) is state


def test_parse_rejects_unknown_state_naming_the_field() -> None:
    with pytest.raises(AitbcError) as caught:
        parse_state("finished")
    assert caught.value.field == "status"
    assert "pending" in caught.value.message
