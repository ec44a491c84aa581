"""Proto -> dataclass conversion, the status mapping and request validation, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from aitbc.client import Job, JobStatus, SamplingParams
from aitbc.client._convert import event_from_proto, job_from_proto, page_from_proto, state_to_proto, status_from_proto
from aitbc.client._requests import list_request, submit_request
from aitbc.client.models import format_timestamp
from aitbc.v1 import jobs_pb2

from .fake_coordinator import T0, FakeJobService


@pytest.fixture
def done() -> Job:
    return job_from_proto(FakeJobService().jobs["job_done"])


def test_job_timestamps_are_utc_aware_and_unset_ones_none(done: Job) -> None:
    assert done.created_at == T0
    assert done.created_at is not None
    assert done.created_at.tzinfo is UTC
    assert done.completed_at == T0 + timedelta(minutes=2)
    assert done.estimated_completion is None


def test_job_fields(done: Job) -> None:
    assert done.status == "completed"
    assert done.status is JobStatus.COMPLETED
    assert (done.id, done.output) == ("job_done", "Hello")
    assert done.is_final
    # float32 on the wire: 0.7 must not come back as 0.699999988.
    assert done.params == SamplingParams(max_tokens=100, temperature=0.7, top_p=None, stream=False)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 2)
    assert done.error is None


def test_empty_strings_become_none() -> None:
    job = job_from_proto(jobs_pb2.Job(job_id="job_1", status=jobs_pb2.JOB_STATE_PENDING))
    assert job.miner_id is None
    assert job.error is None
    assert job.created_at is None


def test_to_dict_has_the_seed_json_shape(done: Job) -> None:
    data = done.to_dict()
    assert data["status"] == "completed"
    assert data["created_at"] == "2026-02-13T10:00:00Z"
    assert data["completed_at"] == "2026-02-13T10:02:00Z"
    assert data["estimated_completion"] is None
    assert data["result"] == "Hello"
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2}
    assert json.loads(json.dumps(data)) == data


def test_format_timestamp_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 2, 13, 12, 0, 0, 500_000, tzinfo=plus_two)) == "2026-02-13T10:00:00.500Z"
    assert format_timestamp(None) is None


@pytest.mark.parametrize("microsecond", [0, 1, 1_000, 694_000, 694_123, 999_999])
def test_format_timestamp_spells_an_instant_as_the_rest_gateway_does(microsecond: int) -> None:
    """The CLI's JSON and REST's must be equal text; a whole millisecond once printed `.694000Z` against `.694Z`."""
    moment = datetime(2026, 11, 29, 23, 36, 40, microsecond, tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    assert format_timestamp(moment) == stamp.ToJsonString()


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (jobs_pb2.JOB_STATE_PENDING, "pending"),
        (jobs_pb2.JOB_STATE_ASSIGNED, "assigned"),
        (jobs_pb2.JOB_STATE_RUNNING, "running"),
        (jobs_pb2.JOB_STATE_COMPLETED, "completed"),
        (jobs_pb2.JOB_STATE_FAILED, "failed"),
        (jobs_pb2.JOB_STATE_CANCELED, "canceled"),
    ],
)
def test_states_map_both_ways_in_lower_case(state: jobs_pb2.JobState, status: str) -> None:
    assert status_from_proto(state) == status
    assert state_to_proto(status) == state


@pytest.mark.parametrize("spelling", ["cancelled", "CANCELLED", " Canceled "])
def test_cancelled_is_accepted_as_input(spelling: str) -> None:
    assert JobStatus(spelling) is JobStatus.CANCELED
    assert state_to_proto(spelling) == jobs_pb2.JOB_STATE_CANCELED


def test_unknown_status_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown job status 'done'; expected one of pending, .*canceled"):
        state_to_proto("done")


def test_unspecified_state_from_the_server_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown job state 0"):
        status_from_proto(jobs_pb2.JOB_STATE_UNSPECIFIED)


def test_final_statuses() -> None:
    assert {status for status in JobStatus if status.is_final} == {"completed", "failed", "canceled"}


def test_token_and_state_events() -> None:
    events = [event_from_proto(message) for message in FakeJobService().events["job_done"]]
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert [event.kind for event in events] == ["state", "state", "state", "tokens", "tokens", "state"]
    assert "".join(event.text for event in events) == "Hello"
    assigned, final = events[1], events[-1]
    assert (assigned.status, assigned.miner_id, assigned.attempt) == ("assigned", "miner_1", 1)
    assert final.is_final
    assert final.usage is not None
    assert final.usage.completion_tokens == 2
    assert events[3].status is None
    assert events[3].token_count == 1
    assert events[3].time == T0 + timedelta(seconds=4)


def test_page_without_token_is_the_last() -> None:
    page = page_from_proto(jobs_pb2.ListJobsResponse(jobs=[FakeJobService().jobs["job_done"]]))
    assert [job.job_id for job in page.jobs] == ["job_done"]
    assert page.next_page_token is None


def test_submit_request_merges_params_and_keywords() -> None:
    request = submit_request(
        "hi", "llama3.2", {"max_tokens": 5, "temperature": 0.5}, {"temperature": 0.2, "max_tokens": None}
    )
    assert request.params.max_tokens == 5
    assert request.params.temperature == pytest.approx(0.2)
    assert not request.params.HasField("top_p")


def test_submit_request_accepts_sampling_params_and_leaves_none_unset() -> None:
    request = submit_request("hi", "llama3.2", SamplingParams(top_p=0.5, stream=True), {})
    assert request.params.stream
    assert request.params.top_p == pytest.approx(0.5)
    assert not request.params.HasField("max_tokens")


@pytest.mark.parametrize(
    ("params", "overrides"),
    [({"max_token": 5}, {}), (None, {"max_token": 5})],
)
def test_unknown_params_are_named(params: dict[str, int] | None, overrides: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="unknown sampling parameter\\(s\\): max_token; expected max_tokens"):
        submit_request("hi", "llama3.2", params, overrides)


def test_list_request_leaves_unset_arguments_unset() -> None:
    assert list_request(None, None, None) == jobs_pb2.ListJobsRequest()
    request = list_request("cancelled", 10, "abc")
    assert (request.status, request.limit, request.page_token) == (jobs_pb2.JOB_STATE_CANCELED, 10, "abc")
