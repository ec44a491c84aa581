"""The seed's HTTP miner API through the gateway: routes that exist only as proto annotations.

No gateway code names these paths; `GET /v1/jobs/available` also shows a
literal path winning over JobService's `GET /v1/jobs/{job_id}` over real HTTP.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Keys
from tests.gateway.conftest import MODEL, job_in_state
from tests.gateway.test_rest import submit


async def test_register_poll_claim_complete(http: httpx.AsyncClient, keys: Keys) -> None:
    job_id = (await submit(http))["job_id"]
    async with httpx.AsyncClient(base_url=http.base_url, headers={"X-Api-Key": keys.miner}) as miner:
        registered = await miner.post(
            "/v1/miners/register",
            json={
                "miner_id": "my-miner-001",
                "capabilities": [MODEL, "codellama"],
                "gpu_info": {"name": "NVIDIA RTX 4090", "memory": "24GB"},
            },
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["miner_id"] == "my-miner-001"

        available = await miner.get("/v1/jobs/available", params={"miner_id": "my-miner-001"})
        assert available.status_code == 200, available.text
        assert [job["job_id"] for job in available.json()["jobs"]] == [job_id]

        claimed = await miner.post(f"/v1/jobs/{job_id}/claim", json={"miner_id": "my-miner-001"})
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["assignment"]["job_id"] == job_id

        completed = await miner.post(
            f"/v1/jobs/{job_id}/complete",
            json={
                "miner_id": "my-miner-001",
                "result": "The generated output...",
                "completed_at": "2026-01-24T15:00:05Z",
            },
        )
        assert completed.status_code == 200, completed.text

        again = await miner.post(f"/v1/jobs/{job_id}/claim", json={"miner_id": "my-miner-001"})
        assert again.status_code == 409
    done = await job_in_state(http, str(job_id), "completed")
    assert done["result"] == "The generated output..."


async def test_two_racing_http_claims_one_wins_the_other_gets_409(http: httpx.AsyncClient, keys: Keys) -> None:
    job_id = (await submit(http))["job_id"]
    async with httpx.AsyncClient(base_url=http.base_url, headers={"X-Api-Key": keys.miner}) as miner:
        for miner_id in ("rig-a", "rig-b"):
            registered = await miner.post(
                "/v1/miners/register",
                json={"miner_id": miner_id, "capabilities": [MODEL], "gpu_info": {"name": "RTX", "memory": "24GB"}},
            )
            assert registered.status_code == 201, registered.text
        claims = await asyncio.gather(
            *(miner.post(f"/v1/jobs/{job_id}/claim", json={"miner_id": rig}) for rig in ("rig-a", "rig-b"))
        )
    codes = sorted(claim.status_code for claim in claims)
    assert codes == [200, 409]
    loser = next(claim for claim in claims if claim.status_code == 409)
    assert loser.json()["error_code"] == "JOB_NOT_CLAIMABLE"
