"""Seed 004's routing API, `POST /api/jobs/submit`, and the payout addresses it names nodes by."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from aitbc.coordinator.miners import MinerInfo
from aitbc.domain.errors import AitbcError
from aitbc.domain.eth_address import address_problem, keccak256, to_checksum_address
from gateway.options import GatewayOptions
from gateway.seed_routing import eth_text, wei_for
from miner.config import MinerConfig
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, running_gateway
from tests.support.scripted_miner import ScriptedMiner

PAYOUT = "0x742d35Cc6634C0532925a3b844Bc9e7595f2bD18".lower()
CHECKSUMMED = to_checksum_address(PAYOUT)
REQUESTER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
WEI_PER_CREDIT = 10**15  # 1 credit = 0.001 ETH
SEED_REQUEST = {
    "modelId": MODEL,
    "input": "Explain quantum computing in simple terms.",
    "requesterAddress": REQUESTER,
}


@pytest.fixture
async def seed(target: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    options = GatewayOptions(wei_per_credit=WEI_PER_CREDIT)
    async with (
        running_gateway(target, options=options) as address,
        httpx.AsyncClient(base_url=f"http://{address}", headers={"X-Api-Key": keys.client}) as client,
    ):
        yield client


@pytest.fixture
async def paid_miner(target: str, keys: Keys) -> AsyncIterator[ScriptedMiner]:
    async with ScriptedMiner(target, keys.miner) as scripted:
        await scripted.hello("paid", [MODEL], max_concurrency=2, payout_address=PAYOUT)
        yield scripted


def test_eip55_addresses() -> None:
    assert to_checksum_address(REQUESTER.lower()) == REQUESTER
    assert address_problem(REQUESTER) is None
    assert address_problem(REQUESTER.lower()) is None
    assert address_problem("0x" + REQUESTER[2:].upper()) is None
    wrong_case = REQUESTER.replace("a", "A", 1)
    assert "EIP-55" in str(address_problem(wrong_case))
    for malformed in ("", "0x123", REQUESTER[2:], REQUESTER + "0", "0x" + "g" * 40):
        assert "0x and 40 hex digits" in str(address_problem(malformed))
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_prices_convert_to_wei_and_eth_exactly() -> None:
    assert wei_for(1_200_000, 10**15) == 1_200_000_000_000_000
    assert wei_for(1, 1) == 1  # rounded up, never down to free
    assert (eth_text(1_200_000_000_000_000), eth_text(0), eth_text(10**18), eth_text(1)) == (
        "0.0012",
        "0",
        "1",
        "0.000000000000000001",
    )


def test_a_payout_address_is_validated_where_a_miner_gives_it() -> None:
    MinerInfo("m", frozenset({"tiny"}), 1, payout_address=PAYOUT).validate()
    with pytest.raises(AitbcError) as caught:
        MinerInfo("m", frozenset({"tiny"}), 1, payout_address="0xabc").validate()
    assert caught.value.field == "payout_address"
    with pytest.raises(ValueError, match="--payout-address"):
        MinerConfig(coordinator="c:1", api_key="k", payout_address=REQUESTER.replace("a", "A", 1))


async def test_the_seed_request_answers_in_the_seed_shape(
    seed: httpx.AsyncClient, paid_miner: ScriptedMiner, miner: ScriptedMiner
) -> None:
    """Two miners serve the model; only one has a payout address, and it is the node named."""
    response = await seed.post("/api/jobs/submit", json=SEED_REQUEST)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    data = body["data"]
    assert set(data) == {
        "modelId",
        "assignedNode",
        "nodeReputation",
        "estimatedCostWei",
        "estimatedCostEth",
        "inputHash",
        "instructions",
    }
    assert data["modelId"] == "llama-3.2-1b-instruct"
    assert data["assignedNode"] == CHECKSUMMED
    assert isinstance(data["nodeReputation"], int)
    assert 0 <= data["nodeReputation"] <= 100
    quote = (await seed.post("/v1/jobs:quote", json={"model": MODEL, "prompt": SEED_REQUEST["input"]})).json()
    wei = math.ceil(quote["estimated_cost"] * WEI_PER_CREDIT / 1_000_000)
    assert wei > 0
    assert data["estimatedCostWei"] == str(wei)
    assert Decimal(data["estimatedCostEth"]) * 10**18 == wei
    assert data["nodeReputation"] == round(quote["miner_reputation"] / 100)
    assert data["inputHash"] == "0x" + keccak256(SEED_REQUEST["input"].encode()).hex()
    assert set(data["instructions"]) == {"step1", "step2"}
    # Nothing was submitted.
    assert (await seed.get("/v1/jobs")).json()["jobs"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requesterAddress": "0x123"}, "requesterAddress"),
        ({"requesterAddress": REQUESTER.replace("a", "A", 1)}, "requesterAddress"),
        ({"modelId": ""}, "modelId"),
        ({"input": None}, "input"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_requests_are_400_in_the_seed_error_shape(
    seed: httpx.AsyncClient, paid_miner: ScriptedMiner, change: dict[str, object], field: str
) -> None:
    request = {key: value for key, value in {**SEED_REQUEST, **change}.items() if value is not None}
    response = await seed.post("/api/jobs/submit", json=request)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["field"] == field
    assert isinstance(body["error"], str)
    assert body["error"]


async def test_an_unknown_model_is_404(seed: httpx.AsyncClient, paid_miner: ScriptedMiner) -> None:
    response = await seed.post("/api/jobs/submit", json={**SEED_REQUEST, "modelId": "no-such-model"})
    assert response.status_code == 404
    assert (response.json()["ok"], response.json()["field"]) == (False, "modelId")


async def test_no_node_with_a_payout_address_is_503(seed: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    response = await seed.post("/api/jobs/submit", json=SEED_REQUEST)
    assert response.status_code == 503
    body = response.json()
    assert (body["ok"], body["error_code"]) == (False, "NO_ELIGIBLE_MINER")
    assert "payout address" in body["error"]


async def test_without_a_rate_or_a_key_the_route_says_why(http: httpx.AsyncClient, gateway: str) -> None:
    unconfigured = await http.post("/api/jobs/submit", json=SEED_REQUEST)
    assert unconfigured.status_code == 503
    assert unconfigured.json()["ok"] is False
    assert "--wei-per-credit" in unconfigured.json()["error"]
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as anonymous:
        keyless = await anonymous.post("/api/jobs/submit", json=SEED_REQUEST)
    assert keyless.status_code == 401
    assert keyless.json()["ok"] is False


async def test_a_polling_miner_registers_its_payout_address_over_rest(seed: httpx.AsyncClient, keys: Keys) -> None:
    async with httpx.AsyncClient(base_url=seed.base_url, headers={"X-Api-Key": keys.miner}) as miner:
        bad = await miner.post(
            "/v1/miners/register",
            json={"miner_id": "rig", "capabilities": [MODEL], "payout_address": REQUESTER.replace("a", "A", 1)},
        )
        assert (bad.status_code, bad.json()["field"]) == (400, "payout_address")
        registered = await miner.post(
            "/v1/miners/register", json={"miner_id": "rig", "capabilities": [MODEL], "payout_address": PAYOUT}
        )
        assert registered.status_code == 201, registered.text
    routed = await seed.post("/api/jobs/submit", json=SEED_REQUEST)
    assert routed.status_code == 200, routed.text
    assert routed.json()["data"]["assignedNode"] == CHECKSUMMED
