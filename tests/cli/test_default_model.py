"""A job that names no model runs on the coordinator's default model, and listings say which that is."""

from __future__ import annotations

import json

import pytest

from aitbc import config
from aitbc.cli.local_stack import served_default
from aitbc.client import AsyncClient
from aitbc.domain.catalog import DEFAULT_CATALOG
from tests.conftest import Keys
from tests.support.scripted_miner import ScriptedMiner

from .conftest import DEFAULT_MODEL, Aitbc

SEED_PROMPT = "Explain machine learning in simple terms"


@pytest.mark.usefixtures("synthetic_miner")
async def test_the_seeds_first_command_runs_on_the_default_model(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aitbc("submit", SEED_PROMPT, "--max-tokens", "8", "--stream") == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert f"on {DEFAULT_MODEL}" in captured.err


@pytest.mark.usefixtures("synthetic_miner")
async def test_the_sdk_without_a_model_gets_the_default(target: str, keys: Keys) -> None:
    async with AsyncClient(target, keys.client) as client:
        job = await client.submit_job(prompt="What is the capital of France?", params={"max_tokens": 4})
        done = await client.wait_for_job(job.id, timeout=30)
    assert (done.model, done.status) == (DEFAULT_MODEL, "completed")
    assert done.output


@pytest.mark.usefixtures("synthetic_miner")
async def test_llama32_runs_on_a_cpu_miner(aitbc: Aitbc, capsys: pytest.CaptureFixture[str]) -> None:
    # The synthetic miner reports no GPU: Llama 3.2 asks for none (llama.cpp runs its GGUF on a CPU).
    assert await aitbc("submit", "Generate a haiku about coding", "--model", "llama3.2", "--max-tokens", "4") == 0
    job_id = capsys.readouterr().out.strip()
    assert await aitbc("status", job_id) == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == job_id
    for name in ("llama3.2", "llama3.2:3b"):
        entry = DEFAULT_CATALOG.resolve(name)
        assert (entry.min_tier, entry.min_vram_bytes) == (0, 0)


async def test_models_marks_the_default(
    aitbc: Aitbc, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("rig-1", [DEFAULT_MODEL], vram_gib=0)
        assert await aitbc("models") == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:2] == ["MODEL", "DEFAULT"]
        marked = [line.split()[0] for line in table[1:] if line.split()[1:2] == ["yes"]]
        assert marked == [DEFAULT_MODEL]
        assert await aitbc("models", "--json") == 0
        models = json.loads(capsys.readouterr().out)
    assert [model["id"] for model in models if model["is_default"]] == [DEFAULT_MODEL]


async def test_the_coordinator_refuses_an_unknown_default_model(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aitbc("coordinator", "--default-model", "no-such-model", "--listen", "127.0.0.1:0") == 2
    error = capsys.readouterr().err
    assert error.startswith("aitbc coordinator: error: --default-model: unknown model 'no-such-model'")


@pytest.mark.usefixtures("synthetic_miner")
async def test_no_model_and_the_default_named_are_the_same_request(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default applies on the server before the request is hashed: a retry that names it is the same job.
    assert await aitbc("submit", "same", "--max-tokens", "3", "--idempotency-key", "k") == 0
    first = capsys.readouterr().out.strip()
    assert await aitbc("submit", "same", "--model", DEFAULT_MODEL, "--max-tokens", "3", "--idempotency-key", "k") == 0
    assert capsys.readouterr().out.strip() == first


def test_up_defaults_to_the_model_its_miner_serves() -> None:
    # `aitbc up --model Llama-3.2-1B-Instruct-Q4_K_M.gguf --model-name llama3.2` serves Llama 3.2 by default.
    assert served_default(DEFAULT_CATALOG, ["llama3.2"]) == "llama-3.2-1b-instruct"
    assert served_default(DEFAULT_CATALOG, ["smollm2-135m-instruct"]) == "smollm2-135m-instruct"
    # A model the catalog does not know: the miner is refused (and says why); the default stays the built-in one.
    assert served_default(DEFAULT_CATALOG, ["my-model"]) == config.DEFAULT_MODEL


async def test_up_refuses_model_options_the_synthetic_backend_cannot_use(
    aitbc: Aitbc, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aitbc("up", "--backend", "synthetic", "--model-name", "llama3.2") == 2
    assert capsys.readouterr().err == "aitbc up: error: --model and --model-name apply to the llama.cpp backend\n"


async def test_a_gguf_file_needs_the_name_it_is_served_as(aitbc: Aitbc, capsys: pytest.CaptureFixture[str]) -> None:
    # Otherwise it would be advertised as the bundled SmolLM2: clients would get another model than they asked for.
    assert await aitbc("up", "--model", "/models/Llama-3.2-1B-Instruct-Q4_K_M.gguf") == 2
    assert "--model needs --model-name" in capsys.readouterr().err
