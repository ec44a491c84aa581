"""`aitbc up` (what `make run` starts) as a process of its own: the seed's examples, as written but for the
model they name and the key they need, produce tokens; Ctrl-C says what became of unfinished jobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aitbc import config
from aitbc.cli import main
from aitbc.client import AsyncClient
from aitbc.domain.states import JobState
from aitbc.store.sqlite import SqliteStore
from aitbc_sdk import AITBCClient

from .conftest import Spawned, free_port, spawn_aitbc


@dataclass
class Stack:
    process: Spawned
    grpc: str
    http: str
    home: Path
    banner: str

    @property
    def key(self) -> str:
        return (self.home / config.CLIENT_KEY_FILE).read_text().strip()


@asynccontextmanager
async def aitbc_up(tmp_path: Path, *options: str) -> AsyncIterator[Stack]:
    home = tmp_path / "home"
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    args = ("up", "--backend", "synthetic", "--listen", grpc, "--http", http, *options)
    async with spawn_aitbc(*args, env={config.ENV_HOME: str(home)}) as process:
        banner = await process.read_until("Ctrl-C stops everything")
        yield Stack(process, grpc, http, home, banner)


@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's shell after `make run`: nothing set but the data directory `aitbc up` uses."""
    monkeypatch.setenv(config.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(config.ENV_API_KEY, raising=False)
    monkeypatch.delenv(config.ENV_COORDINATOR, raising=False)


async def aitbc(*args: str) -> int:
    exit_code: int = await asyncio.to_thread(main, list(args))
    return exit_code


@pytest.mark.usefixtures("user_env")
async def test_the_seed_examples_run_against_up_without_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aitbc_up(tmp_path, "--tokens-per-second", "0") as stack:
        assert "default model       synthetic" in stack.banner
        connection = ("--coordinator", stack.grpc)

        # CLI: the seed's first command, then its status and its tokens.
        assert await aitbc("submit", "Explain machine learning in simple terms", *connection) == 0
        job_id = capsys.readouterr().out.strip()
        assert await aitbc("watch", job_id, *connection) == 0
        assert capsys.readouterr().out.strip()
        assert await aitbc("status", job_id, *connection) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "completed"

        # SDK: the seed's code with the key added and no model, at the gateway's base URL as the seed
        # writes it (an http:// URL is the gateway) and at the coordinator's gRPC address.
        def sdk_example(api_url: str) -> str:
            with AITBCClient(api_url=api_url, api_key=stack.key) as client:
                job = client.submit_job(
                    prompt="What is the capital of France?", params={"max_tokens": 100, "temperature": 0.5}
                )
                assert (job.id, job.status) != ("", "")
                result = client.wait_for_job(job.id, timeout=60)
                return result.output

        assert await asyncio.to_thread(sdk_example, f"http://{stack.http}/api")
        assert await asyncio.to_thread(sdk_example, f"grpc://{stack.grpc}")

        # curl: the seed's submit with the key header and no model, then its status.
        async with httpx.AsyncClient(base_url=f"http://{stack.http}", headers={"X-Api-Key": stack.key}) as http:
            submitted = await http.post("/v1/jobs", json={"prompt": "Hello, world!", "params": {"max_tokens": 50}})
            assert submitted.status_code == 201, submitted.text
            job = submitted.json()
            async with http.stream("GET", f"/v1/jobs/{job['job_id']}/stream") as events:
                lines = [line async for line in events.aiter_lines() if line]
            assert any("tokens" in json.loads(line) for line in lines)
            status = (await http.get(f"/v1/jobs/{job['job_id']}")).json()
            assert (status["status"], status["model"]) == ("completed", "synthetic")
            assert status["result"]
            assert (await http.get("/health")).status_code == 200

        stack.process.interrupt()
        code, out, _ = await stack.process.finish()
    assert code == 0
    assert out.splitlines()[-1] == "stopped"
    assert "requeued" not in out


async def test_ctrl_c_requeues_what_outlives_the_grace_and_says_so(tmp_path: Path) -> None:
    async with aitbc_up(tmp_path, "--grace", "0.5") as stack, AsyncClient(stack.grpc, stack.key) as client:
        # 2000 tokens at the synthetic miner's 50 a second: far longer than the grace.
        job = await client.submit_job("a long story", max_tokens=2000)
        events = client.stream(job.job_id)
        async for event in events:
            if event.kind == "tokens":
                break
        stack.process.interrupt()
        code, out, _ = await stack.process.finish()
    assert code == 0
    lines = out.splitlines()
    assert "stopping: running jobs get up to 0.5s to finish (press Ctrl-C again to stop at once)" in lines
    assert lines[-2:] == ["1 job requeued; it resumes on the next start", "stopped"]
    store = await SqliteStore.open(stack.home / config.DATABASE_FILE)
    try:
        record = await store.get_job(job.job_id)
    finally:
        await store.close()
    assert record is not None
    assert record.state is JobState.PENDING
