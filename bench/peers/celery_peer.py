"""The Celery + Redis peer: the same 16-token synthetic job as a Celery task.

`CeleryPeer` starts `redis-server` on a free loopback port with no persistence (`--save '' --appendonly no`) and
a Celery 5 worker with 2 processes (`--pool prefork --concurrency 2`) in their own processes. The task makes the
same 16 tokens as the miner's synthetic backend (`synthetic_text`, no delay) and returns the text; Redis is both
the broker and the result backend.

The client is plain synchronous Celery, the way its documentation calls a task: `task.delay(...).get()`. With the
Redis result backend `get()` waits on a pub/sub message for the task (no polling). For N in flight, N threads
each run `delay().get()` in a loop: Celery's result backend is per thread by default
(`result_backend_thread_safe = False`), so each thread has its own pub/sub connection. That was the faster of
the two idiomatic ways tried here; the other, a window of N `apply_async` joined with `ResultSet.join_native()`,
only keeps N in flight on average.

Run alone (prints Celery's numbers only; `bench/control_plane.py --peer celery` runs both systems alternating):

    PYTHONPATH=. .venv/bin/python bench/peers/celery_peer.py [--jobs 300] [--concurrency 1 4 16 64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from celery import Celery

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers import peer_missing
from miner.backends.synthetic import synthetic_text

TOKENS = 16
PROMPT = "benchmark prompt"
REDIS_URL_ENV = "AITBC_BENCH_REDIS_URL"

_ROOT = Path(__file__).resolve().parents[2]


def _make_app(url: str) -> Celery:
    app = Celery("aitbc_bench", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A worker's defaults otherwise; results expire so that Redis does not grow across runs.
        result_expires=600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = _make_app(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))


@app.task(name="aitbc_bench.generate")  # type: ignore[untyped-decorator]
def generate(prompt: str, max_tokens: int) -> str:
    """The synthetic backend's output for `prompt`: `max_tokens` made-up words, no delay."""
    return synthetic_text(prompt, max_tokens)


def versions() -> str:
    import celery
    import redis

    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    version = next((word[2:] for word in server if word.startswith("v=")), "?")
    return f"celery {celery.__version__}, redis-py {redis.__version__}, redis-server {version}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class CeleryPeer:
    """Redis and a 2-process Celery worker, started by `with CeleryPeer() as peer:` and stopped on exit."""

    def __init__(self, *, concurrency: int = 2) -> None:
        self._concurrency = concurrency
        self._port = _free_port()
        self.url = f"redis://127.0.0.1:{self._port}/0"
        self._app = _make_app(self.url)
        self._task: Any = self._app.signature("aitbc_bench.generate").type
        self._processes: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None

    def __enter__(self) -> CeleryPeer:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(self._port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        self._processes.append(redis)
        self._wait_for_redis()
        env = {
            **os.environ,
            REDIS_URL_ENV: self.url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        }
        worker = [
            sys.executable, "-m", "celery", "--quiet", "-A", "bench.peers.celery_peer:app", "worker",
            "--pool", "prefork", "--concurrency", str(self._concurrency), "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        # Its output (a banner, a warning when run as root) goes to a log, shown if it never answers.
        self._log = tempfile.NamedTemporaryFile(prefix="aitbc-bench-celery-", suffix=".log", delete=False)  # noqa: SIM115
        self._processes.append(subprocess.Popen(worker, env=env, cwd=_ROOT, stdout=self._log, stderr=self._log))
        # The first answer proves the worker consumes; a few more warm both processes.
        try:
            self._task.delay(PROMPT, TOKENS).get(timeout=60)
        except Exception:
            print(Path(self._log.name).read_text()[-4000:], file=sys.stderr)
            raise
        self.round_trips(20)

    def _wait_for_redis(self, deadline: float = 10.0) -> None:
        give_up = time.monotonic() + deadline
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self._port), timeout=1):
                return
            if time.monotonic() > give_up:
                raise TimeoutError(f"redis-server did not listen on port {self._port} within {deadline}s")
            time.sleep(0.05)

    def close(self) -> None:
        for process in reversed(self._processes):
            _stop(process)
        self._processes.clear()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def one_job(self) -> float:
        """Seconds from calling the task to holding its result."""
        began = time.perf_counter()
        text: str = self._task.delay(PROMPT, TOKENS).get(timeout=60)
        elapsed = time.perf_counter() - began
        assert len(text.split()) == TOKENS
        return elapsed

    def round_trips(self, jobs: int) -> list[float]:
        return [self.one_job() for _ in range(jobs)]

    def throughput(self, concurrency: int, jobs: int) -> float:
        """Completed jobs/s with `concurrency` threads each running delay().get() until `jobs` are done."""
        lock = threading.Lock()
        remaining = jobs

        def worker() -> None:
            nonlocal remaining
            while True:
                with lock:
                    if remaining <= 0:
                        return
                    remaining -= 1
                self.one_job()

        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return jobs / (time.perf_counter() - began)


def _main() -> None:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    args = parser.parse_args()
    if missing := peer_missing():
        sys.exit(missing)
    print(versions())
    with CeleryPeer() as peer:
        ms = sorted(1000 * s for s in peer.round_trips(args.jobs))
        p99 = statistics.quantiles(ms, n=100)[98]
        print(f"round trip, one at a time: median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms (n={len(ms)})")
        for concurrency in args.concurrency:
            rate = peer.throughput(concurrency, max(args.jobs, concurrency * 10))
            print(f"  {concurrency:>3} in flight   {rate:8.1f} jobs/s")


if __name__ == "__main__":
    _main()
