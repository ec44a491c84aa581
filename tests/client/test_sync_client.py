"""The blocking `Client` against the fake coordinator served from a background thread, over both transports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aitbc import config
from aitbc.client import AitbcApiError, Client, StatusCode
from aitbc.v1 import jobs_pb2

from .fake_coordinator import API_KEY, SUBMITTED_JOB_ID, FakeJobService


@pytest.fixture
def client(thread_target: str) -> Iterator[Client]:
    with Client(thread_target, API_KEY, timeout=10) as client:
        yield client


def test_submit_then_wait_for_the_result(client: Client, fake: FakeJobService) -> None:
    job = client.submit_job("What is the capital of France?", params={"max_tokens": 100, "temperature": 0.5})
    assert (job.id, job.status) == (SUBMITTED_JOB_ID, "pending")
    request = fake.requests[-1]
    assert isinstance(request, jobs_pb2.SubmitJobRequest)
    # No model named: the request leaves it unset and the coordinator applies its default model.
    assert request.model == ""
    assert request.params.max_tokens == 100
    done = client.wait_for_job(job.id, timeout=10)
    assert (done.status, done.output) == ("completed", "echo: What is the capital of France?")


def test_get_list_and_cancel(client: Client) -> None:
    assert client.get_job("job_failed").error == "miner lost"
    assert [job.job_id for job in client.iter_jobs()] == ["job_done", "job_running", "job_failed"]
    assert [job.job_id for job in client.list_jobs(status="running").jobs] == ["job_running"]
    assert client.cancel_job("job_running").status == "canceled"


def test_stream_yields_events_in_order_and_ends_on_the_final_state(client: Client) -> None:
    events = list(client.stream("job_failed"))
    assert [(event.seq, event.status) for event in events] == [(1, "pending"), (2, "failed")]
    assert events[-1].error == "miner lost"


def test_wait_for_job_stops_at_the_final_event_even_if_the_server_keeps_it_open(
    client: Client, fake: FakeJobService
) -> None:
    fake.held_open.add("job_done")
    assert client.wait_for_job("job_done", timeout=10).status == "completed"
    assert fake.watch_cancelled.wait(10)


def test_closing_a_stream_early_cancels_the_call(client: Client, fake: FakeJobService) -> None:
    events = client.stream("job_running")
    assert next(events).seq == 1
    events.close()
    assert fake.watch_cancelled.wait(10)


def test_wait_for_job_raises_timeout_error_naming_the_job(client: Client) -> None:
    with pytest.raises(TimeoutError, match=r"job_running did not reach a final state within 0\.2s"):
        client.wait_for_job("job_running", timeout=0.2)


def test_errors_carry_reason_detail_and_field(client: Client) -> None:
    with pytest.raises(AitbcApiError) as caught:
        client.cancel_job("job_done")
    error = caught.value
    assert (error.code, error.reason, error.field) == (
        StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_CANCELABLE",
        "job_id",
    )
    assert str(error) == "JOB_NOT_CANCELABLE: job job_done already finished"


def test_target_and_key_default_to_the_environment(thread_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_COORDINATOR, thread_target)
    monkeypatch.setenv(config.ENV_API_KEY, API_KEY)
    with Client() as client:
        assert client.target == thread_target
        assert client.get_job("job_done").status == "completed"


def test_key_defaults_to_the_saved_one(thread_target: str, tmp_path: Path) -> None:
    (tmp_path / config.CLIENT_KEY_FILE).write_text(f"{API_KEY}\n")
    with Client(thread_target) as client:
        assert client.get_job("job_done").status == "completed"


def test_target_defaults_to_the_local_coordinator() -> None:
    with Client() as client:
        assert client.target == config.DEFAULT_GRPC_ADDRESS


def test_targets_name_their_transport() -> None:
    with Client("grpc://coordinator:7000") as grpc_client, Client("https://aitbc.bubuit.net/api/") as http_client:
        assert (grpc_client.target, http_client.target) == ("coordinator:7000", "https://aitbc.bubuit.net/api")
    with pytest.raises(ValueError, match="credentials are for gRPC targets"):
        Client("https://aitbc.bubuit.net/api", credentials=grpc.ssl_channel_credentials())
