"""`aitbc_sdk.AITBCClient`: the seed documents' spelling of the SDK."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from aitbc_sdk import AITBCClient, parse_api_url

from .fake_coordinator import API_KEY


@pytest.mark.parametrize(
    ("api_url", "target", "tls"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("grpc://coordinator:7000", "coordinator:7000", False),
        ("http://coordinator/api", "coordinator:50051", False),
        ("localhost", "localhost:50051", False),
        ("https://aitbc.bubuit.net/api", "aitbc.bubuit.net:443", True),
        ("https://aitbc.bubuit.net:8443", "aitbc.bubuit.net:8443", True),
        ("grpcs://coordinator", "coordinator:443", True),
        ("http://[::1]:50051/api", "[::1]:50051", False),
    ],
)
def test_api_url_forms(api_url: str, target: str, tls: bool) -> None:
    assert parse_api_url(api_url) == (target, tls)


@pytest.mark.parametrize(
    ("api_url", "message"),
    [("ftp://host", "unsupported scheme 'ftp'"), ("http://", "names no host"), ("http://host:http", "Port")],
)
def test_bad_api_urls(api_url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_api_url(api_url)


def test_seed_workflow(thread_address: str) -> None:
    client = AITBCClient(api_url=f"http://{thread_address}", api_key=API_KEY)
    job = client.submit_job(
        prompt="What is the capital of France?", model="llama3.2", params={"max_tokens": 100, "temperature": 0.5}
    )
    assert (job.id, job.status) == ("job_new", "pending")
    result = client.wait_for_job(job.id, timeout=60)
    assert result.output == "echo: What is the capital of France?"
    assert client.get_job(job.id).status == "completed"
    client.close()


def test_https_opens_a_tls_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    secure_targets: list[str] = []
    open_secure_channel = grpc.secure_channel

    def recording_secure_channel(target: str, *args: Any, **kwargs: Any) -> grpc.Channel:
        secure_targets.append(target)
        return open_secure_channel(target, *args, **kwargs)

    monkeypatch.setattr(grpc, "secure_channel", recording_secure_channel)
    with AITBCClient("https://aitbc.bubuit.net/api") as client:
        assert client.target == "aitbc.bubuit.net:443"
    assert secure_targets == ["aitbc.bubuit.net:443"]


def test_without_api_url_the_default_coordinator_is_used() -> None:
    with AITBCClient() as client:
        assert client.target == "127.0.0.1:50051"
