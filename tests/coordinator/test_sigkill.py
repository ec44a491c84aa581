"""SIGKILL at any moment never double-charges or loses a charge.

A child process settles priced jobs in a loop (tests/support/settlement_worker.py); the test kills it with
SIGKILL after a random number of finished jobs, wherever it happens to be (often inside a store
transaction), and checks the SQLite file: every invariant of test_conservation.py, including "a job that
ended is closed by exactly one transaction, a job still running still holds its hold". The next round
restarts the worker on the same file, which resumes the unfinished jobs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.coordinator.test_conservation import check_money
from tests.support.settlement_worker import MINTED

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 12
# The bar: at least this many jobs settle across the kills.
SETTLED = 100


def test_sigkill_at_any_moment_never_double_charges_or_loses_a_charge(tmp_path: Path) -> None:
    database = tmp_path / "aitbc.db"
    pick = random.Random(20261129)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    finished = rounds = 0
    while rounds < ROUNDS or finished < SETTLED:
        rounds += 1
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.support.settlement_worker", str(database)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        try:
            for _ in range(pick.randint(1, 40)):
                line = worker.stdout.readline()
                assert line, f"the worker stopped on its own with status {worker.poll()}"
                finished += line.startswith("job ")
            # The lines arrive as jobs finish; a random pause moves the kill off that rhythm, so it lands in any
            # phase of the loop: inside a hold, a settlement, a block, between them. (A pause to randomise
            # the moment, not to wait for a condition.)
            time.sleep(pick.uniform(0, 0.03))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker.stdout.close()
        assert worker.returncode == -signal.SIGKILL
        check_money(database, MINTED)
    assert finished >= SETTLED
