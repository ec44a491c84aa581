from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.errors import AitbcError
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams, estimate_completion
from aitbc.domain.states import JobState


def test_defaults_are_the_seeds() -> None:
    assert SamplingParams.build() == SamplingParams(max_tokens=256, temperature=0.7, top_p=0.9, stream=False)


@given(
    max_tokens=st.integers(min_value=1, max_value=8192),
    temperature=st.floats(min_value=0.0, max_value=2.0),
    top_p=st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
)
def test_every_value_in_range_is_accepted(max_tokens: int, temperature: float, top_p: float) -> None:
    params = SamplingParams.build(max_tokens=max_tokens, temperature=temperature, top_p=top_p)
    assert (params.max_tokens, params.temperature, params.top_p) == (max_tokens, temperature, top_p)


@given(max_tokens=st.integers().filter(lambda n: not 1 <= n <= 8192))
def test_max_tokens_out_of_range_is_rejected(max_tokens: int) -> None:
    with pytest.raises(AitbcError) as caught:
        SamplingParams.build(max_tokens=max_tokens)
    assert caught.value.field == "params.max_tokens"


@given(temperature=st.floats().filter(lambda t: not 0.0 <= t <= 2.0))
def test_temperature_out_of_range_is_rejected(temperature: float) -> None:
    with pytest.raises(AitbcError):
        SamplingParams.build(temperature=temperature)


def test_spec_validation() -> None:
    params = SamplingParams.build()
    assert JobSpec.build(prompt="hi", model="llama3.2:1b", params=params).model == "llama3.2:1b"
    for prompt, model, field in (("", "m", "prompt"), ("x" * 200_001, "m", "prompt"), ("hi", "", "model")):
        with pytest.raises(AitbcError) as caught:
            JobSpec.build(prompt=prompt, model=model, params=params)
        assert caught.value.field == field


def _record(state: JobState, completion_tokens: int) -> JobRecord:
    now = datetime.now(UTC)
    spec = JobSpec(prompt="p", model="m", params=SamplingParams(max_tokens=200))
    return JobRecord("job_1", "o", state, spec, now, now, completion_tokens=completion_tokens)


def test_progress() -> None:
    assert _record(JobState.RUNNING, 50).progress == 25
    assert _record(JobState.RUNNING, 200).progress == 99  # not done until completed
    assert _record(JobState.COMPLETED, 10).progress == 100


def test_estimate_completion() -> None:
    now = datetime.now(UTC)
    assert estimate_completion(now, max_tokens=100, completion_tokens=50, tokens_per_second=10) == now + timedelta(
        seconds=5
    )
    assert estimate_completion(now, max_tokens=100, completion_tokens=50, tokens_per_second=0) is None
