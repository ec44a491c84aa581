"""The client verbs, registered on a fresh parser and run against the fake coordinator."""

from __future__ import annotations

import json

import pytest

from aitbc import config
from aitbc.v1 import jobs_pb2

from .cli_runner import run_cli
from .fake_coordinator import API_KEY, SUBMITTED_JOB_ID, FakeJobService, free_address


@pytest.fixture
def fake_coordinator_env(thread_address: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake, found the way users find theirs: through the environment."""
    monkeypatch.setenv(config.ENV_COORDINATOR, thread_address)
    monkeypatch.setenv(config.ENV_API_KEY, API_KEY)
    return thread_address


@pytest.mark.usefixtures("fake_coordinator_env")
def test_submit_prints_only_the_job_id(capsys: pytest.CaptureFixture[str], fake: FakeJobService) -> None:
    assert run_cli("submit", "Write a story", "--max-tokens", "500", "--temperature", "0.7") == 0
    assert capsys.readouterr().out == f"{SUBMITTED_JOB_ID}\n"
    request = fake.requests[-1]
    assert isinstance(request, jobs_pb2.SubmitJobRequest)
    # No --model: the request names none, and the coordinator applies its default model.
    assert (request.prompt, request.model, request.params.max_tokens) == ("Write a story", "", 500)
    assert not request.params.HasField("top_p")


@pytest.mark.usefixtures("fake_coordinator_env")
def test_submit_stream_prints_the_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("submit", "hi", "--model", "codellama", "--stream") == 0
    captured = capsys.readouterr()
    assert captured.out == "echo: hi\n"
    assert f"job {SUBMITTED_JOB_ID}" in captured.err


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize("args", [("watch", "job_done"), ("client", "watch", "--job-id", "job_done")])
def test_watch_prints_tokens_and_states(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert run_cli(*args) == 0
    captured = capsys.readouterr()
    assert captured.out == "Hello\n"
    assert captured.err.splitlines() == [
        "state: pending",
        "state: assigned on miner_1 (attempt 1)",
        "state: running on miner_1 (attempt 1)",
        "state: completed on miner_1 (attempt 1)",
    ]


@pytest.mark.usefixtures("fake_coordinator_env")
def test_watch_resumes_from_seq(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("watch", "job_done", "--from-seq", "5") == 0
    assert capsys.readouterr().out == "lo\n"


@pytest.mark.usefixtures("fake_coordinator_env")
def test_watch_past_the_last_event_asks_the_job_how_it_ended(
    capsys: pytest.CaptureFixture[str], fake: FakeJobService
) -> None:
    assert run_cli("watch", "job_failed", "--from-seq", "99") == 1
    assert capsys.readouterr().err == "error: job job_failed failed: miner lost\n"
    assert isinstance(fake.requests[-1], jobs_pb2.GetJobRequest)


@pytest.mark.usefixtures("fake_coordinator_env")
def test_watch_of_a_failed_job_exits_1_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("watch", "job_failed") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith("error: job job_failed failed: miner lost\n")


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize("args", [("status", "job_done"), ("client", "status", "--job-id", "job_done")])
def test_status_prints_the_seed_status_object(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert run_cli(*args) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {
        "job_id": "job_done",
        "status": "completed",
        "progress": 100,
        "miner_id": "miner_1",
        "created_at": "2026-02-13T10:00:00Z",
        "started_at": "2026-02-13T10:01:00Z",
        "completed_at": "2026-02-13T10:02:00Z",
        # As the REST API prints the job: an unset time is left out, an empty error is "".
        "error": "",
    }


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize("args", [("get", "job_done"), ("client", "get", "--job-id", "job_done")])
def test_get_prints_the_whole_job(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert run_cli(*args) == 0
    job = json.loads(capsys.readouterr().out)
    assert (job["result"], job["prompt"], job["params"]["max_tokens"]) == ("Hello", "Say hello", 100)


@pytest.mark.usefixtures("fake_coordinator_env")
def test_jobs_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("jobs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "ID", "STATUS", "MODEL", "TOKENS", "CREATED", "(UTC)", "PROMPT"]
    assert lines[1].split() == ["job_done", "completed", "llama3.2", "2", "2026-02-13", "10:00:00", "Say", "hello"]
    assert [line.split()[0] for line in lines[2:]] == ["job_running", "job_failed"]


@pytest.mark.usefixtures("fake_coordinator_env")
def test_jobs_json_with_limit_notes_further_pages(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("jobs", "--json", "--limit", "1") == 0
    captured = capsys.readouterr()
    assert [job["job_id"] for job in json.loads(captured.out)] == ["job_done"]
    assert "raise --limit" in captured.err


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize("verb", ["list", "jobs"])
def test_client_list_filters_by_status(capsys: pytest.CaptureFixture[str], fake: FakeJobService, verb: str) -> None:
    assert run_cli("client", verb, "--status", "cancelled", "--limit", "10") == 0
    request = fake.requests[-1]
    assert isinstance(request, jobs_pb2.ListJobsRequest)
    assert (request.status, request.limit) == (jobs_pb2.JOB_STATE_CANCELED, 10)
    assert capsys.readouterr().out.splitlines()[1:] == []


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize("args", [("cancel", "job_running"), ("client", "cancel", "--job-id", "job_running")])
def test_cancel_prints_the_final_status_and_tokens(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert run_cli(*args) == 0
    assert capsys.readouterr().out == "job_running: canceled (completion tokens: 1)\n"


@pytest.mark.usefixtures("fake_coordinator_env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "job_123"), "error: JOB_NOT_FOUND: job job_123 not found\n"),
        (("client", "cancel", "--job-id", "job_done"), "error: JOB_NOT_CANCELABLE: job job_done already finished\n"),
    ],
)
def test_api_errors_exit_1_with_reason_and_detail(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert run_cli(*args) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", message)


@pytest.mark.usefixtures("fake_coordinator_env")
def test_rejected_key_hints_at_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("status", "job_done", "--api-key", "wrong") == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: UNAUTHENTICATED: bad API key",
        "hint: pass a valid key with --api-key or $AITBC_API_KEY",
    ]


def test_missing_api_key_names_every_way_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("status", "job_done") == 1
    error = capsys.readouterr().err
    assert "--api-key" in error
    assert "AITBC_API_KEY" in error
    assert "make run" in error


def test_unreachable_coordinator_hints_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    address = free_address()
    assert run_cli("get", "job_done", "--coordinator", address, "--api-key", API_KEY) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: UNAVAILABLE: ")
    assert f"hint: no coordinator answered at {address}" in error
    assert "`make run` or `aitbc coordinator`" in error


@pytest.mark.parametrize(
    "args",
    [
        ("client", "status"),
        ("status",),
        ("jobs", "--status", "done"),
        ("submit",),
        ("watch", "job_done", "--from-seq", "x"),
        ("client", "status", "job_done"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run_cli(*args)
    assert caught.value.code == 2
    assert "usage: aitbc" in capsys.readouterr().err
