"""The HTTP transport's translation, without a wire: annotations to requests, JSON and errors back."""

from __future__ import annotations

import pytest

from aitbc.client import AitbcApiError, StatusCode
from aitbc.client._requests import CANCEL_JOB, GET_JOB, LIST_JOBS, SUBMIT_JOB, WATCH_JOB
from aitbc.client._rest import (
    RestCall,
    SseDecoder,
    error_from_http,
    from_json,
    parse_response,
    rest_call,
    stream_message,
    timeout_header,
)
from aitbc.client._status import HTTP_STATUS, code_for_http
from aitbc.v1 import jobs_pb2


def test_requests_follow_the_annotations() -> None:
    listing = rest_call(LIST_JOBS, jobs_pb2.ListJobsRequest(status=jobs_pb2.JOB_STATE_RUNNING, limit=5))
    assert listing == RestCall("GET", "/v1/jobs", (("status", "JOB_STATE_RUNNING"), ("limit", "5")))
    watch = rest_call(WATCH_JOB, jobs_pb2.WatchJobRequest(job_id="job/1 x", from_seq=7))
    assert watch == RestCall("GET", "/v1/jobs/job%2F1%20x/stream", (("from_seq", "7"),))
    cancel = rest_call(CANCEL_JOB, jobs_pb2.CancelJobRequest(job_id="job_1"))
    # The path carries the id; the body (the whole request) does not repeat it.
    assert cancel == RestCall("POST", "/v1/jobs/job_1/cancel", body={}, response_body="job")
    params = jobs_pb2.SamplingParams(max_tokens=5, stream=True)
    submit = rest_call(SUBMIT_JOB, jobs_pb2.SubmitJobRequest(prompt="hi", params=params, queue_if_unavailable=True))
    assert submit.body == {"prompt": "hi", "params": {"max_tokens": 5, "stream": True}, "queue_if_unavailable": True}


def test_a_missing_path_field_is_the_coordinators_invalid_argument() -> None:
    with pytest.raises(AitbcApiError) as caught:
        rest_call(GET_JOB, jobs_pb2.GetJobRequest())
    assert (caught.value.code, caught.value.reason, caught.value.field) == (
        StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "job_id",
    )


def test_responses_read_the_rest_spelling_of_enums_and_skip_unknown_fields() -> None:
    call = rest_call(GET_JOB, jobs_pb2.GetJobRequest(job_id="job_1"))
    data = {"job_id": "job_1", "status": "canceled", "priority": "high", "a_field_from_the_future": 1}
    response = parse_response(call, data, jobs_pb2.GetJobResponse)
    assert (response.job.status, response.job.priority) == (jobs_pb2.JOB_STATE_CANCELED, jobs_pb2.JOB_PRIORITY_HIGH)
    with pytest.raises(AitbcApiError) as caught:
        from_json(["not", "an", "object"], jobs_pb2.Job)
    assert caught.value.code is StatusCode.INTERNAL


@pytest.mark.parametrize("code", list(StatusCode))
def test_every_code_survives_the_trip_through_http(code: StatusCode) -> None:
    assert code_for_http(HTTP_STATUS[code], code.name) is code


def test_errors_from_the_gateway_and_from_a_proxy() -> None:
    body = b'{"detail": "job job_1 is already completed", "error_code": "JOB_NOT_CANCELABLE", "field": "job_id"}'
    conflict = error_from_http(409, body, None)
    assert (conflict.code, conflict.reason, conflict.detail, conflict.field, conflict.retry_after) == (
        StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_CANCELABLE",
        "job job_1 is already completed",
        "job_id",
        None,
    )
    full = error_from_http(429, b'{"detail": "full", "error_code": "QUEUE_FULL"}', "3")
    assert (full.code, full.retry_after) == (StatusCode.RESOURCE_EXHAUSTED, 3.0)
    proxy = error_from_http(502, b"<html>Bad Gateway</html>", "soon")
    assert (proxy.code, proxy.reason, proxy.detail, proxy.retry_after) == (
        StatusCode.UNAVAILABLE,
        "UNAVAILABLE",
        "<html>Bad Gateway</html>",
        None,
    )


def test_server_sent_events_and_in_band_errors() -> None:
    decoder = SseDecoder()
    lines = [": a comment", "id: 1", 'data: {"seq": 1,', 'data: "time": "2026-01-01T00:00:00Z"}', ""]
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    assert events == [("message", '{"seq": 1,\n"time": "2026-01-01T00:00:00Z"}')]
    assert stream_message(*events[0], jobs_pb2.WatchJobResponse).seq == 1
    error = '{"detail": "deadline exceeded", "error_code": "DEADLINE_EXCEEDED", "status": 504}'
    with pytest.raises(AitbcApiError) as caught:
        stream_message("error", error, jobs_pb2.WatchJobResponse)
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED


def test_deadlines_in_grpc_timeout_form() -> None:
    assert timeout_header(0.2) == {"Grpc-Timeout": "200m"}
    assert timeout_header(0.0001) == {"Grpc-Timeout": "1m"}
    assert timeout_header(200_000.0) == {"Grpc-Timeout": "200000S"}
