"""`aitbc_sdk.AITBCClient`: the seed documents' spelling of the SDK."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from aitbc_sdk import AITBCClient, parse_api_url

from .fake_coordinator import API_KEY


@pytest.mark.parametrize(
    ("api_url", "transport", "address", "tls"),
    [
        ("127.0.0.1:50051", "grpc", "127.0.0.1:50051", False),
        ("grpc://coordinator:7000", "grpc", "coordinator:7000", False),
        ("grpc://coordinator/api", "grpc", "coordinator:50051", False),
        ("localhost", "grpc", "localhost:50051", False),
        ("grpcs://coordinator", "grpc", "coordinator:443", True),
        ("grpcs://aitbc.bubuit.net:8443", "grpc", "aitbc.bubuit.net:8443", True),
        ("grpc://[::1]:50051/api", "grpc", "[::1]:50051", False),
        # An HTTP URL is the gateway's base URL, path included: the seed's spelling.
        ("http://127.0.0.1:8080/api", "http", "http://127.0.0.1:8080/api", False),
        ("https://aitbc.bubuit.net/api/", "http", "https://aitbc.bubuit.net/api", True),
        ("HTTP://[::1]:8080", "http", "http://[::1]:8080", False),
    ],
)
def test_api_url_forms(api_url: str, transport: str, address: str, tls: bool) -> None:
    endpoint = parse_api_url(api_url)
    assert (endpoint.transport, endpoint.address, endpoint.tls) == (transport, address, tls)


@pytest.mark.parametrize(
    ("api_url", "message"),
    [("ftp://host", "unsupported scheme 'ftp'"), ("http://", "names no host"), ("http://host:http", "Port")],
)
def test_bad_api_urls(api_url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_api_url(api_url)


def test_seed_workflow(thread_target: str, transport: str) -> None:
    # The seed's base URL as it gives it for HTTP; the gRPC address in one of the forms that name one.
    api_url = thread_target if transport == "http" else f"grpc://{thread_target}"
    client = AITBCClient(api_url=api_url, api_key=API_KEY)
    job = client.submit_job(
        prompt="What is the capital of France?", model="llama3.2", params={"max_tokens": 100, "temperature": 0.5}
    )
    assert (job.id, job.status) == ("job_new", "pending")
    result = client.wait_for_job(job.id, timeout=60)
    assert result.output == "echo: What is the capital of France?"
    assert client.get_job(job.id).status == "completed"
    client.close()


def test_grpcs_opens_a_tls_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    secure_targets: list[str] = []
    open_secure_channel = grpc.secure_channel

    def recording_secure_channel(target: str, *args: Any, **kwargs: Any) -> grpc.Channel:
        secure_targets.append(target)
        return open_secure_channel(target, *args, **kwargs)

    monkeypatch.setattr(grpc, "secure_channel", recording_secure_channel)
    with AITBCClient("grpcs://aitbc.bubuit.net") as client:
        assert client.target == "aitbc.bubuit.net:443"
    assert secure_targets == ["aitbc.bubuit.net:443"]


def test_an_https_url_is_the_gateway_not_a_grpc_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_channel(*args: Any, **kwargs: Any) -> grpc.Channel:
        raise AssertionError("an https:// api_url must not open a gRPC channel")

    monkeypatch.setattr(grpc, "secure_channel", no_channel)
    monkeypatch.setattr(grpc, "insecure_channel", no_channel)
    with AITBCClient("https://aitbc.bubuit.net/api") as client:
        assert client.target == "https://aitbc.bubuit.net/api"


def test_without_api_url_the_default_coordinator_is_used() -> None:
    with AITBCClient() as client:
        assert client.target == "127.0.0.1:50051"
