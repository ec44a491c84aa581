"""stop() right after the Welcome ends the agent: on Python 3.11 asyncio.wait_for could drop the cancellation
when it arrived as the Welcome was read, and run() then waited forever for a session that kept serving."""

from __future__ import annotations

import asyncio

from aitbc.services.server import RunningCoordinator
from miner.agent import MinerAgent
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig
from tests.conftest import Keys

from .fakes import STEP_TIMEOUT


async def test_stop_right_after_connecting_returns(coordinator: RunningCoordinator, target: str, keys: Keys) -> None:
    # The race needs the cancellation and the Welcome at the same moment: a few rounds make it likely.
    for round_ in range(5):
        miner_id = f"quick-{round_}"
        agent = MinerAgent(MinerConfig(coordinator=target, api_key=keys.miner, miner_id=miner_id), SyntheticBackend())
        running = asyncio.create_task(agent.run())
        assert await coordinator.coordinator.wait_for_miner(miner_id, STEP_TIMEOUT)
        agent.stop()
        await asyncio.wait_for(running, STEP_TIMEOUT)
