"""Operating the gateway: /livez and /readyz, /metrics scraped over HTTP, request ids from the HTTP request to
the coordinator's JSON log line for the job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from aitbc.logs import JsonFormatter
from gateway.main import EmbeddedGateway, GatewaySettings
from tests.conftest import Keys
from tests.support.scripted_miner import ScriptedMiner

from .conftest import MODEL, assigned, job_in_state, run_to_completion


@asynccontextmanager
async def gateway_with(target: str, port: int, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    gateway = EmbeddedGateway(target, f"127.0.0.1:{port}", settings=GatewaySettings(**settings))
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield http
    finally:
        await gateway.stop()


@contextmanager
def json_lines(*loggers: str) -> Iterator[list[dict[str, Any]]]:
    """What `loggers` log while inside, each line parsed from the JSON log format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    saved = {}
    for name in loggers:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(saved[name])
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_livez_answers_while_the_process_serves(target: str, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port) as http:
        response = await http.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_waits_for_a_miner(target: str, keys: Keys, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port) as http:
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "not_ready"
        assert "fewer than 1 miner online" in not_ready.json()["reason"]
        async with ScriptedMiner(target, keys.miner) as miner:
            await miner.hello("m1", [MODEL])
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ready"
            assert (await http.get("/api/readyz")).status_code == 200


async def test_readyz_counts_the_miners_it_is_told_to(target: str, keys: Keys, unused_tcp_port: int) -> None:
    async with (
        gateway_with(target, unused_tcp_port, ready_min_miners=2) as http,
        ScriptedMiner(target, keys.miner) as first,
    ):
        await first.hello("m1", [MODEL])
        assert (await http.get("/readyz")).status_code == 503
        async with ScriptedMiner(target, keys.miner) as second:
            await second.hello("m2", [MODEL])
            assert (await http.get("/readyz")).status_code == 200


async def test_readyz_with_no_miner_check_asks_only_the_coordinator(target: str, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port, ready_min_miners=0) as http:
        assert (await http.get("/readyz")).status_code == 200


async def test_readyz_without_a_coordinator_says_why(unused_tcp_port: int) -> None:
    # Nothing listens on the gateway's own port's neighbour: a coordinator that is down.
    async with gateway_with(f"127.0.0.1:{unused_tcp_port + 1}", unused_tcp_port) as http:
        assert (await http.get("/livez")).status_code == 200
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("the coordinator is not serving: unreachable")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_by_route_template(
    target: str, keys: Keys, miner: ScriptedMiner, unused_tcp_port: int
) -> None:
    async with gateway_with(target, unused_tcp_port) as http:
        http.headers["X-Api-Key"] = keys.client
        submitted = await http.post("/v1/jobs", json={"prompt": "Hi", "model": MODEL})
        job_id = submitted.json()["job_id"]
        await assigned(miner)
        await run_to_completion(miner, job_id, "Hello")
        await job_in_state(http, job_id, "completed")
        assert (await http.get("/v1/jobs/job_000000000000000000000000")).status_code == 404
        assert (await http.get("/no/such/route")).status_code == 404
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    counted = samples(scraped.text)
    name = "aitbc_gateway_http_request_duration_seconds_count"

    def count(method: str, route: str, status: str) -> float:
        return counted.get((name, frozenset({"method": method, "route": route, "status": status}.items())), 0.0)

    assert count("POST", "/v1/jobs", "201") == 1
    assert count("GET", "/v1/jobs/{job_id}", "200") >= 1
    assert count("GET", "/v1/jobs/{job_id}", "404") == 1
    assert count("GET", "unmatched", "404") == 1
    # No raw path (a job id) ever becomes a label value.
    assert job_id not in scraped.text


async def test_metrics_can_be_turned_off(target: str, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port, metrics=False) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_a_request_id_reaches_the_coordinators_log_line_for_the_job(
    target: str, keys: Keys, miner: ScriptedMiner, unused_tcp_port: int
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with json_lines("aitbc.coordinator.jobs", "gateway.access") as lines:
        async with gateway_with(target, unused_tcp_port) as http:
            http.headers["X-Api-Key"] = keys.client
            response = await http.post(
                "/v1/jobs",
                json={"prompt": "Hi", "model": MODEL},
                headers={"X-Request-Id": "req-ops-42", "traceparent": traceparent},
            )
            job_id = response.json()["job_id"]
            assert response.headers["x-request-id"] == "req-ops-42"
            await assigned(miner)
            await run_to_completion(miner, job_id, "Hello")
            await job_in_state(http, job_id, "completed")
    transitions = [line for line in lines if line["logger"] == "aitbc.coordinator.jobs" and line["job_id"] == job_id]
    assert [line["state"] for line in transitions] == ["pending", "assigned", "running", "completed"]
    for line in transitions:
        assert line["request_id"] == "req-ops-42"
        assert line["level"] == "INFO"
        assert {"time", "message", "attempt", "miner_id"} <= line.keys()
    assert transitions[0]["traceparent"] == traceparent  # the submit's own call carried it
    assert transitions[-1]["miner_id"] == "m1"
    assert transitions[-1]["attempt"] == 1
    access = [line for line in lines if line["logger"] == "gateway.access" and line.get("request_id") == "req-ops-42"]
    assert access[0]["route"] == "/v1/jobs"
    assert access[0]["status"] == 201


async def test_a_request_without_an_id_gets_one(target: str, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port) as http:
        first = await http.get("/livez")
        second = await http.get("/livez", headers={"X-Request-Id": "x" * 200})
    assert len(first.headers["x-request-id"]) == 32
    # An id that cannot be logged and forwarded as is gets replaced.
    assert second.headers["x-request-id"] != "x" * 200


@pytest.mark.parametrize(
    "value",
    [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
)
def test_a_valid_traceparent_is_kept(value: str) -> None:
    from aitbc.logs import valid_traceparent

    assert valid_traceparent(value) == value
    assert valid_traceparent(value.upper()) is None
    assert valid_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None


async def test_a_websocket_handshake_carries_the_request_id(target: str, keys: Keys, unused_tcp_port: int) -> None:
    async with gateway_with(target, unused_tcp_port):
        url = f"ws://127.0.0.1:{unused_tcp_port}/v1/jobs/ws"
        headers = {"X-Api-Key": keys.client, "X-Request-Id": "ws-7"}
        async with connect(url, additional_headers=headers, proxy=None) as socket:
            assert socket.response is not None
            assert socket.response.headers["x-request-id"] == "ws-7"
