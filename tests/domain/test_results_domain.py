"""The pure parts of results: package files and checksums, formats, lifetimes, plans and share tokens."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from aitbc.domain.errors import AitbcError
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams
from aitbc.domain.result_package import (
    ResultFormat,
    checksums,
    package_files,
    packed,
    sha256sum_lines,
    stderr_log,
    stdout_log,
)
from aitbc.domain.retention import (
    RETENTION,
    LinkStatus,
    Plan,
    hash_share_token,
    link_status,
    new_share_token,
    parse_lifetime,
    share_id,
)
from aitbc.domain.states import JobState

T0 = datetime(2026, 2, 13, 10, 0, tzinfo=UTC)


def job(result: str = "out\nput") -> JobRecord:
    spec = JobSpec.build(prompt="secret prompt", model="tiny", params=SamplingParams.build(max_tokens=8))
    return JobRecord(
        job_id="job_abc",
        owner_id="o",
        state=JobState.FAILED,
        spec=spec,
        created_at=T0,
        updated_at=T0,
        result=result,
        attempt=2,
        error='miner said "no"',
        completed_at=T0 + timedelta(seconds=5),
    )


EVENTS = [
    JobEvent("job_abc", 1, T0, EventKind.STATE, state=JobState.PENDING),
    JobEvent("job_abc", 2, T0, EventKind.STATE, state=JobState.RUNNING, miner_id="m1", attempt=1),
    JobEvent("job_abc", 3, T0 + timedelta(seconds=1), EventKind.TOKENS, text='a "quote"\n', token_count=2, attempt=1),
    JobEvent("job_abc", 4, T0 + timedelta(seconds=2), EventKind.STATE, state=JobState.FAILED, attempt=2, error="oom"),
]


def test_the_package_is_the_same_bytes_every_time_and_holds_no_prompt() -> None:
    files = package_files(job(), EVENTS, None)
    assert files == package_files(job(), EVENTS, None)
    assert sorted(files) == ["logs/stderr.log", "logs/stdout.log", "output.json", "result.txt"]
    assert b"secret prompt" not in b"".join(files.values())
    zipped = packed(job(), files, ResultFormat.ZIP).data
    assert zipped == packed(job(), files, ResultFormat.ZIP).data
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert archive.getinfo("artifacts/").is_dir()
        assert {name: archive.read(name) for name in files} == files


def test_logs_keep_timings_attempts_and_quote_text_on_one_line() -> None:
    assert stdout_log(EVENTS) == '2026-02-13T10:00:01.000000Z attempt=1 seq=3 tokens=2 "a \\"quote\\"\\n"\n'
    lines = stderr_log(EVENTS).splitlines()
    assert lines[1] == "2026-02-13T10:00:00.000000Z running attempt=1 miner=m1"
    assert lines[2].endswith('failed attempt=2 prompt_tokens=0 completion_tokens=0 error="oom"')


def test_sha256sum_lines_are_what_sha256sum_prints() -> None:
    sums = checksums({"result.txt": b"", "logs/a.log": b"abc"})
    assert sha256sum_lines(sums) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  logs/a.log\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  result.txt\n"
    )


@pytest.mark.parametrize(("text", "expected"), [("", ResultFormat.ZIP), ("TXT", ResultFormat.TXT)])
def test_formats(text: str, expected: ResultFormat) -> None:
    assert ResultFormat.parse(text) is expected


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("", timedelta(days=7)),
        ("30m", timedelta(minutes=30)),
        ("12H", timedelta(hours=12)),
        ("365d", timedelta(days=365)),
    ],
)
def test_lifetimes(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["7", "0s", "366d", "1.5d", "-1d", "7 days", "1e3s"])
def test_bad_lifetimes_name_the_field(text: str) -> None:
    with pytest.raises(AitbcError) as caught:
        parse_lifetime(text)
    assert caught.value.field == "expires"


def test_plans_follow_the_seed_table() -> None:
    assert {plan.value: period.days for plan, period in RETENTION.items()} == {"free": 7, "pro": 30, "enterprise": 90}
    assert Plan.parse(" Pro ") is Plan.PRO
    with pytest.raises(AitbcError) as caught:
        Plan.parse("gold")
    assert caught.value.field == "plan"


def test_share_tokens_are_unguessable_and_only_their_hash_names_them() -> None:
    token = new_share_token()
    assert len(token.removeprefix("share_")) == 43  # 32 random bytes in base64url: 256 bits
    assert token != new_share_token()
    digest = hash_share_token(token)
    assert len(digest) == 64
    assert token not in share_id(digest)
    assert share_id(digest) == share_id(hash_share_token(token))


def test_link_status() -> None:
    assert link_status(T0, T0 + timedelta(seconds=1), None) is LinkStatus.ACTIVE
    assert link_status(T0, T0, None) is LinkStatus.EXPIRED
    assert link_status(T0, T0 + timedelta(days=1), T0) is LinkStatus.REVOKED
