"""A coordinator that settles priced jobs as fast as it can until it is killed: the SIGKILL test's victim.

`python -m tests.support.settlement_worker DB` opens the store, credits the client once (a fixed credit id,
so a rerun adds nothing), and then loops forever: submit a job, let an in-process miner complete or fail
it, and print one line per finished job. It never stops by itself; the test kills it with SIGKILL
at arbitrary moments (between, and in the middle of, store transactions) and checks the store after each.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import MinerInfo
from aitbc.domain.errors import AitbcError
from aitbc.store.sqlite import SqliteStore
from tests.coordinator.test_parts import ADMIN, CLIENT, MINER
from tests.coordinator.test_settlement import CONFIG, priced_spec

# Enough for every job a run can finish before it is killed: a hold is at most 202 µcr.
MINTED = 10_000_000


async def run(path: Path) -> None:
    store = await SqliteStore.open(path)
    coordinator = Coordinator(store, CONFIG)
    await coordinator.start()
    await coordinator.credit(ADMIN, CLIENT.owner_id, MINTED, credit_id="sigkill-test")
    session = await coordinator.attach_miner(
        MINER, MinerInfo(miner_id="victim", models=frozenset({"priced"}), max_concurrency=4)
    )
    n = 0
    while True:
        n += 1
        try:
            await coordinator.submit(CLIENT, priced_spec(), queue_if_unavailable=True)
        except AitbcError as error:
            print(f"refused {error.reason}", flush=True)
            continue
        while not session._outbox.empty():  # the assignments a real miner would have read
            session._outbox.get_nowait()
        for job_id, lease in list(session.assignments.items()):
            if n % 5 == 0:
                await coordinator.reports.failed(session, job_id, lease.attempt, error="boom", retryable=False)
            else:
                await coordinator.reports.done(
                    session, job_id, lease.attempt, output="ok", prompt_tokens=2, completion_tokens=n % 90,
                    finish_reason="stop",
                )  # fmt: skip
        print(f"job {n}", flush=True)


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
