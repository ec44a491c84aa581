"""The one thread that owns ExLlamaV2's dynamic generator, and the event loop's handles on its jobs.

The generator is not thread-safe, so everything that touches it (making jobs, enqueueing, iterate(), cancel)
happens on this thread. The event loop talks to it through a command queue, drained between iterate() calls, and
hears back through one ThreadBridge per job; neither side ever blocks the event loop.

Nothing here imports exllamav2 or torch: the generator and its jobs come in through `DynamicGenerator` and
`JobFactory`, so tests drive the loop with a fake generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from miner.backends.base import TokenChunk
from miner.backends.exllamav2_output import JobOutput, Outcome, parse_result
from miner.backends.exllamav2_settings import SamplerSettings
from miner.backends.thread_bridge import ThreadBridge

log = logging.getLogger(__name__)

# Chunks one job may run ahead of its consumer. The thread serves every job, so a consumer that falls this far
# behind holds them all up: that is the backpressure, since all of a miner's jobs share one stream anyway.
_BRIDGE_CAPACITY = 64


class EngineError(RuntimeError):
    """ExLlamaV2 failed a job: a CUDA error, out of memory, a job it would not take."""


class DynamicGenerator(Protocol):
    """What the loop uses of ExLlamaV2DynamicGenerator."""

    def enqueue(self, job: Any) -> object: ...

    def iterate(self) -> list[dict[str, Any]]: ...

    def cancel(self, job: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to run, in the miner's terms."""

    # The prompt as the engine's own token tensor, shape (1, n).
    input_ids: object
    max_new_tokens: int
    sampler: SamplerSettings
    stop: Sequence[str]


# Makes the engine's job for a spec, with the identifier its results carry; runs on the generator's thread.
JobFactory = Callable[[JobSpec, int], object]


class JobHandle:
    """A submitted job, seen from the event loop: its chunks, then `done`, which resolves to the job's outcome
    (None when it ended before the generator finished it) or raises EngineError. `done` resolves only once the job
    has left the generator, its cache pages freed."""

    def __init__(self, key: int, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.chunks: ThreadBridge[TokenChunk] = ThreadBridge(loop, _BRIDGE_CAPACITY)
        self.done: asyncio.Future[Outcome | None] = loop.create_future()


@dataclass(frozen=True, slots=True)
class _Submit:
    handle: JobHandle
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class _Cancel:
    key: int


@dataclass(frozen=True, slots=True)
class _Close:
    pass


class _Job:
    """A job in the generator, seen from the generator's thread."""

    def __init__(self, handle: JobHandle, engine_job: object, stop: Sequence[str]) -> None:
        self.handle = handle
        self.engine_job = engine_job
        self.output = JobOutput(stop)

    def finish(self, error: BaseException | None = None) -> None:
        _finish(self.handle, self.output.outcome, error)


def _finish(handle: JobHandle, outcome: Outcome | None, error: BaseException | None) -> None:
    """From the generator's thread: end the chunks, then settle `done`, in that order on the event loop too."""
    # A consumer whose event loop is gone waits for nothing.
    with contextlib.suppress(RuntimeError):
        handle.chunks.close()
        handle.done.get_loop().call_soon_threadsafe(_settle, handle.done, outcome, error)


def _settle(done: asyncio.Future[Outcome | None], outcome: Outcome | None, error: BaseException | None) -> None:
    # Cancelled when the task awaiting it was.
    if done.done():
        return
    if error is None:
        done.set_result(outcome)
    else:
        done.set_exception(error)


class GeneratorLoop:
    """Runs jobs through one dynamic generator on a thread of its own; see the module docstring."""

    def __init__(self, generator: DynamicGenerator, new_job: JobFactory) -> None:
        self._generator = generator
        self._new_job = new_job
        self._commands: queue.SimpleQueue[_Submit | _Cancel | _Close] = queue.SimpleQueue()
        self._keys = itertools.count()
        self._thread = threading.Thread(target=self._run, name="exllamav2 generator", daemon=True)
        self._thread.start()

    # Event loop.

    def submit(self, spec: JobSpec) -> JobHandle:
        handle = JobHandle(next(self._keys), asyncio.get_running_loop())
        self._commands.put(_Submit(handle, spec))
        return handle

    def abandon(self, handle: JobHandle) -> None:
        """The consumer stopped listening: the job leaves the generator at the next pass; `done` says when."""
        handle.chunks.stop()
        self._commands.put(_Cancel(handle.key))

    def close(self) -> None:
        """Blocks until the thread has ended; jobs still running fail."""
        self._commands.put(_Close())
        self._thread.join()

    # Generator thread.

    def _run(self) -> None:
        jobs: dict[int, _Job] = {}
        while True:
            for command in self._pending_commands(idle=not jobs):
                match command:
                    case _Submit(handle, spec):
                        self._start(handle, spec, jobs)
                    case _Cancel(key):
                        if (job := jobs.get(key)) is not None:
                            self._end(job, jobs)
                    case _Close():
                        self._fail_all(jobs, EngineError("the ExLlamaV2 backend closed while the job ran"))
                        return
            if jobs:
                self._step(jobs)

    def _pending_commands(self, *, idle: bool) -> Iterator[_Submit | _Cancel | _Close]:
        """Idle, wait for a command; busy, take only those already there, so that generation goes on."""
        if idle:
            yield self._commands.get()
        while True:
            try:
                yield self._commands.get_nowait()
            except queue.Empty:
                return

    def _start(self, handle: JobHandle, spec: JobSpec, jobs: dict[int, _Job]) -> None:
        try:
            engine_job = self._new_job(spec, handle.key)
            self._generator.enqueue(engine_job)
        except Exception as exc:
            log.exception("ExLlamaV2 did not take a job")
            _finish(handle, None, EngineError(f"ExLlamaV2 did not take the job: {exc!r}"))
            return
        jobs[handle.key] = _Job(handle, engine_job, spec.stop)

    def _step(self, jobs: dict[int, _Job]) -> None:
        """One iterate(): hand each job its output, and take out the jobs that ended."""
        try:
            for result in self._generator.iterate():
                step = parse_result(result)
                job = jobs.get(result["identifier"])
                if step is None or job is None:
                    continue
                chunk = job.output.feed(step)
                delivered = chunk is None or job.handle.chunks.put(chunk)
                if job.output.finished or not delivered:
                    self._end(job, jobs)
        except Exception as exc:
            # Whatever broke, the thread lives on and no consumer is left waiting.
            log.exception("ExLlamaV2 failed; failing its %d jobs", len(jobs))
            self._fail_all(jobs, EngineError(f"ExLlamaV2 failed: {exc!r}"))

    def _end(self, job: _Job, jobs: dict[int, _Job]) -> None:
        """Take out a job that ended. If the generator still runs it (a stop string, a consumer gone), cancel it
        there, which frees its cache pages at once."""
        error = None
        if job.output.outcome is None:
            try:
                self._generator.cancel(job.engine_job)
            except Exception as exc:
                log.exception("ExLlamaV2 did not cancel a job")
                error = EngineError(f"ExLlamaV2 did not cancel the job: {exc!r}")
        del jobs[job.handle.key]
        job.finish(error)

    def _fail_all(self, jobs: dict[int, _Job], error: EngineError) -> None:
        for job in jobs.values():
            # After a failure the generator may no longer know the job; what matters is that no one waits for it.
            with contextlib.suppress(Exception):
                self._generator.cancel(job.engine_job)
            job.finish(error)
        jobs.clear()
