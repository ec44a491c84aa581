"""Fixtures for miner tests: the fake coordinator on a free port, and agents started against it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from miner.agent import MinerAgent
from miner.backends.base import Backend
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig

from .exllamav2_fakes import write_model_dir
from .fakes import (
    STEP_TIMEOUT,
    AgentFactory,
    FakeCoordinator,
    GatedBackend,
    RunningAgent,
    agent_config,
    new_fake_coordinator,
    serving,
)


@pytest.fixture
def fake_coordinator() -> FakeCoordinator:
    return new_fake_coordinator()


@pytest.fixture
async def port(fake_coordinator: FakeCoordinator) -> AsyncIterator[int]:
    async with serving(fake_coordinator) as bound:
        yield bound


@pytest.fixture
def config(port: int) -> MinerConfig:
    return agent_config(port)


@pytest.fixture
def gated_backend() -> GatedBackend:
    return GatedBackend()


@pytest.fixture
async def start_agent(config: MinerConfig) -> AsyncIterator[AgentFactory]:
    """Start an agent's `run` in a task, by default with an unpaced synthetic backend. Stopped after the test;
    an error `run` raised fails the test unless the test awaited it."""
    started: list[RunningAgent] = []

    def start(backend: Backend | None = None, **config_changes: Any) -> RunningAgent:
        agent = MinerAgent(
            dataclasses.replace(config, **config_changes), backend or SyntheticBackend(tokens_per_second=0)
        )
        started.append(RunningAgent(agent, asyncio.create_task(agent.run(), name="agent under test")))
        return started[-1]

    yield start
    for running in started:
        running.agent.stop()
        await asyncio.wait_for(running.task, STEP_TIMEOUT)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder's JSON files, as the ExLlamaV2 backend reads them (see exllamav2_fakes)."""
    return write_model_dir(tmp_path)
