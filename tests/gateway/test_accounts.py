"""Accounts over REST: GET /v1/account, an admin's credit, and 402 for a job the account cannot pay for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.accounts import address_of
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator
from tests.conftest import STARTING_CREDITS, Keys
from tests.gateway.conftest import MODEL


@pytest.fixture
async def admin_http(gateway: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.admin}) as client:
        yield client


async def test_get_account_shows_integer_micro_credits(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/account")
    assert response.status_code == 200, response.text
    account = response.json()
    assert account["address"] == address_of(account["account"])
    assert (account["balance"], account["available"], account["held"], account["spent"]) == (
        STARTING_CREDITS,
        STARTING_CREDITS,
        0,
        0,
    )
    assert isinstance(account["balance"], int)


async def test_only_an_admin_credits_an_account(http: httpx.AsyncClient, admin_http: httpx.AsyncClient) -> None:
    account = (await http.get("/v1/account")).json()["account"]
    refused = await http.post(f"/v1/accounts/{account}:credit", json={"amount": 1})
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
    credited = await admin_http.post(f"/v1/accounts/{account}:credit", json={"amount": 2_500_000, "credit_id": "c1"})
    assert credited.status_code == 200, credited.text
    assert credited.json()["available"] == STARTING_CREDITS + 2_500_000
    again = await admin_http.post(f"/v1/accounts/{account}:credit", json={"amount": 2_500_000, "credit_id": "c1"})
    assert again.json()["available"] == STARTING_CREDITS + 2_500_000  # the same credit id credits once
    bad = await admin_http.post(f"/v1/accounts/{account}:credit", json={"amount": -5})
    assert (bad.status_code, bad.json()["field"]) == (400, "amount")


async def test_a_job_the_account_cannot_pay_for_is_402(gateway: str, coordinator: RunningCoordinator) -> None:
    broke, _ = await create_api_key(coordinator.store, Role.CLIENT, datetime.now(UTC))
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": broke}) as client:
        response = await client.post("/v1/jobs", json={"prompt": "hi", "model": MODEL, "queue_if_unavailable": True})
        assert response.status_code == 402, response.text
        error = response.json()
        assert error["error_code"] == "INSUFFICIENT_FUNDS"
        assert "missing" in error["detail"]
        assert (await client.get("/v1/jobs")).json()["jobs"] == []
