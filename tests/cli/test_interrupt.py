"""Ctrl-C on `aitbc submit --stream` cancels the job, as Ollama's does, and says so; `--detach` leaves it running."""

from __future__ import annotations

import pytest

from aitbc.client import AsyncClient
from tests.conftest import Keys

from .conftest import spawn_aitbc

# 2000 tokens at the synthetic miner's 50 a second: still running when the test presses Ctrl-C.
LONG_JOB = ("submit", "Write a long story", "--max-tokens", "2000", "--stream")


@pytest.mark.usefixtures("synthetic_miner")
async def test_ctrl_c_cancels_the_streamed_job(cli_env: dict[str, str], target: str, keys: Keys) -> None:
    async with spawn_aitbc(*LONG_JOB, env=cli_env) as submit:
        announced = await submit.read_until("job ", stream="stderr")
        job_id = announced.split()[1]
        assert await submit.read_some()  # tokens are flowing
        submit.interrupt()
        code, _, err = await submit.finish()
    assert code == 130
    assert f"canceled job {job_id} (Ctrl-C) after " in err
    async with AsyncClient(target, keys.client) as client:
        assert (await client.get_job(job_id)).status == "canceled"


@pytest.mark.usefixtures("synthetic_miner")
async def test_ctrl_c_with_detach_leaves_the_job_running(cli_env: dict[str, str], target: str, keys: Keys) -> None:
    async with spawn_aitbc(*LONG_JOB, "--detach", env=cli_env) as submit:
        job_id = (await submit.read_until("job ", stream="stderr")).split()[1]
        assert await submit.read_some()
        submit.interrupt()
        code, _, err = await submit.finish()
    assert code == 130
    assert f"stopped following job {job_id}; it keeps running: `aitbc watch {job_id}` follows it again" in err
    async with AsyncClient(target, keys.client) as client:
        assert (await client.get_job(job_id)).status == "running"
        await client.cancel_job(job_id)
