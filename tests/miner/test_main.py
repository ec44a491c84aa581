"""`aitbc miner` plumbing: options to settings, model files, and signals that drain."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import pytest

from aitbc import config as aitbc_config
from miner.main import add_miner_arguments, config_from_args, run_miner
from miner.model_files import ModelFileNotFoundError, resolve_gguf

from .fakes import STEP_TIMEOUT, FakeCoordinator, agent_config


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's key, coordinator or `~/.aitbc` leaks into a test."""
    monkeypatch.setenv(aitbc_config.ENV_HOME, str(tmp_path))
    monkeypatch.delenv(aitbc_config.ENV_MINER_API_KEY, raising=False)
    monkeypatch.delenv(aitbc_config.ENV_COORDINATOR, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_miner_arguments(parser)
    return parser.parse_args(argv)


def test_synthetic_options() -> None:
    config, backend, options = config_from_args(
        parse(
            "--backend=synthetic",
            "--api-key=k",
            "--coordinator=example:1",
            "--tokens-per-second=0",
            "--model-name=m",
            "--max-concurrency=2",
            "--miner-id=rig-1",
        )
    )

    assert (config.coordinator, config.api_key, config.miner_id, config.max_concurrency) == (
        "example:1",
        "k",
        "rig-1",
        2,
    )
    assert (backend, options) == ("synthetic", {"tokens_per_second": 0.0, "models": ("m",)})


def test_the_miner_key_saved_by_aitbc_up_is_the_last_resort(tmp_path: Path) -> None:
    (tmp_path / aitbc_config.MINER_KEY_FILE).write_text("saved-miner-key\n")
    (tmp_path / aitbc_config.CLIENT_KEY_FILE).write_text("a-client-key\n")

    config, _, _ = config_from_args(parse("--backend=synthetic"))

    assert config.api_key == "saved-miner-key"


def test_llama_cpp_is_the_default_and_the_environment_fills_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(aitbc_config.ENV_MINER_API_KEY, "from-env")

    config, backend, options = config_from_args(parse("--model=/models/x.gguf", "--model-name=x"))

    assert (config.coordinator, config.api_key, config.max_concurrency) == (
        aitbc_config.DEFAULT_GRPC_ADDRESS,
        "from-env",
        1,
    )
    assert config.miner_id.startswith(f"{os.uname().nodename}-")
    assert (backend, options) == ("llama.cpp", {"model": "/models/x.gguf", "model_name": "x"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "needs a key with the miner role"),
        (("--api-key=k", "--backend=synthetic", "--model=x.gguf"), "--model applies to the llama.cpp backend"),
        (("--api-key=k", "--tokens-per-second=5"), "--tokens-per-second applies to the synthetic backend"),
        (("--api-key=k", "--model=/models/x.gguf"), "--model with a GGUF file needs --model-name"),
        (("--api-key=k", "--max-concurrency=0"), "max_concurrency must be at least 1"),
    ],
)
def test_options_that_do_not_fit(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_args(parse(*argv))


def test_model_is_a_gguf_path_or_a_known_name(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")

    assert resolve_gguf(str(gguf)) == gguf
    with pytest.raises(ModelFileNotFoundError, match="neither a GGUF file nor a known model"):
        resolve_gguf(str(tmp_path / "missing.gguf"))


async def test_sigterm_drains_and_a_second_one_stops(fake_coordinator: FakeCoordinator, port: int) -> None:
    config = agent_config(port)
    options: dict[str, object] = {"tokens_per_second": 20}

    # First signal: the running job finishes, then the miner leaves.
    miner = asyncio.create_task(run_miner(config, "synthetic", options))
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", "prompt", max_tokens=20)
    await stream.next("started")
    os.kill(os.getpid(), signal.SIGTERM)
    assert (await stream.next_heartbeat()).draining
    assert (await stream.until("done", "job-1"))[-1].done.completion_tokens == 20
    await stream.ended()
    await asyncio.wait_for(miner, STEP_TIMEOUT)

    # Second signal: stop at once, job or not.
    miner = asyncio.create_task(run_miner(config, "synthetic", options))
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-2", "prompt", max_tokens=1000)
    await stream.next("started")
    os.kill(os.getpid(), signal.SIGINT)
    assert (await stream.next_heartbeat()).draining
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(miner, STEP_TIMEOUT)
    await stream.ended()
    assert "done" not in [message.WhichOneof("msg") for message in stream.log]
