"""The miner agent: holds a stream to the coordinator for as long as it serves, reconnecting when it breaks."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from aitbc.config import API_KEY_METADATA, KEEPALIVE_OPTIONS
from aitbc.domain.signing import generate_seed, public_key_of
from aitbc.key_files import load_or_create_private_key
from aitbc.logs import bind_log_fields
from aitbc.tls import aio_channel
from aitbc.v1 import miner_pb2, miner_pb2_grpc
from miner.backends.base import Backend
from miner.config import MinerConfig
from miner.session import Session, StreamLost

log = logging.getLogger(__name__)

# Answers that another try with the same key and hello cannot change.
_REJECTIONS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


class CoordinatorRejectedError(Exception):
    """The coordinator refused this miner (a bad API key, a key without the miner role, a bad hello)."""


class MinerAgent:
    """Serves jobs from the coordinator with one backend.

    `run` connects, says hello and serves assignments until the agent is drained or stopped; when the stream
    breaks it stops the jobs it was running (the coordinator re-queues them) and reconnects with exponential
    backoff and jitter, for as long as it takes.
    """

    def __init__(self, config: MinerConfig, backend: Backend) -> None:
        self._config = config
        self._backend = backend
        self._signing_seed = load_or_create_private_key(config.key_file) if config.key_file else generate_seed()
        self._capacity = min(config.max_concurrency, backend.max_concurrency or config.max_concurrency)
        self._drain_requested = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

    @property
    def miner_id(self) -> str:
        return self._config.miner_id

    @property
    def capacity(self) -> int:
        """Jobs run at once: the configured concurrency, or less where the backend can do less."""
        return self._capacity

    async def run(self) -> None:
        """Serve until drained or stopped. Raises CoordinatorRejectedError when the coordinator refuses the miner."""
        if self._running:
            raise RuntimeError("the miner agent is already running")
        self._running = True
        self._finished.clear()
        # This task and those it starts log as this miner (`aitbc up` runs the miner in a task of its own).
        bind_log_fields(miner_id=self.miner_id)
        log.info(
            "miner %s serving %s (%s, %d at once) for %s",
            self.miner_id,
            ", ".join(self._backend.models),
            self._backend.backend_name,
            self._capacity,
            self._config.coordinator,
        )
        serving = asyncio.create_task(self._serve(), name="miner agent")
        stopping = asyncio.create_task(self._stop_requested.wait(), name="miner stop")
        try:
            await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            serving.cancel()
            stopping.cancel()
            await asyncio.wait((serving, stopping))
            self._running = False
            self._finished.set()
        if not serving.cancelled():
            serving.result()

    async def drain(self) -> None:
        """Take no new jobs, give running ones `drain_grace_seconds` to finish, close the stream; return once
        `run` has returned."""
        self._begin_drain("asked to drain")
        if self._running:
            await self._finished.wait()

    def stop(self) -> None:
        """Stop now: running jobs are abandoned and the stream is closed; `run` returns."""
        self._stop_requested.set()

    def _begin_drain(self, reason: str) -> None:
        if self._drain_requested.is_set():
            return
        log.info("draining (%s): no new jobs; running ones get %gs to finish", reason, self._config.drain_grace_seconds)
        self._drain_requested.set()

    async def _serve(self) -> None:
        while not self._drain_requested.is_set():
            await self._reconnecting()(self._connect_and_serve)

    def _reconnecting(self) -> AsyncRetrying:
        # A fresh one after every session that got as far as the Welcome, so backoff restarts from the initial wait.
        config = self._config
        return AsyncRetrying(
            retry=retry_if_exception_type((grpc.aio.AioRpcError, StreamLost)),
            wait=wait_exponential_jitter(
                multiplier=config.reconnect_initial_backoff,
                max=config.reconnect_max_backoff,
                jitter=config.reconnect_max_backoff / 10,
            ),
            sleep=self._backoff_sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )

    async def _connect_and_serve(self) -> None:
        """One connection. Returns after a session that was welcomed; raises if it failed before that."""
        if self._drain_requested.is_set():
            # Nothing runs while disconnected, so there is nothing left to drain.
            return
        async with aio_channel(self._config.coordinator, self._config.tls, KEEPALIVE_OPTIONS) as channel:
            call = miner_pb2_grpc.MinerServiceStub(channel).Connect(
                metadata=((API_KEY_METADATA, self._config.api_key),)
            )
            # A Drain from the coordinator ends this stream only: the miner finishes its jobs, closes, and
            # reconnects (with backoff) to the coordinator's next incarnation. A local drain ends the agent.
            stream_drained = asyncio.Event()
            forward = asyncio.create_task(self._forward_local_drain(stream_drained), name="miner drain forward")

            def on_coordinator_drain(reason: str) -> None:
                log.info("the coordinator asked to drain (%s): finishing running jobs, then reconnecting", reason)
                stream_drained.set()

            session = Session(
                call=call,
                hello=self._hello(),
                backend=self._backend,
                config=self._config,
                signing_seed=self._signing_seed,
                drain_requested=stream_drained,
                on_drain=on_coordinator_drain,
            )
            try:
                await session.serve()
            except (grpc.aio.AioRpcError, StreamLost) as exc:
                if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _REJECTIONS:
                    raise CoordinatorRejectedError(
                        f"the coordinator at {self._config.coordinator} refused miner {self.miner_id}: "
                        f"{_describe(exc)}; check --api-key (it needs the miner role)"
                    ) from exc
                if not session.welcomed:
                    raise
                if not self._drain_requested.is_set():
                    log.info("lost the stream to the coordinator (%s); reconnecting", _describe(exc))
            finally:
                forward.cancel()

    async def _forward_local_drain(self, stream_drained: asyncio.Event) -> None:
        await self._drain_requested.wait()
        stream_drained.set()

    def _hello(self) -> miner_pb2.MinerHello:
        return miner_pb2.MinerHello(
            miner_id=self.miner_id,
            models=self._backend.models,
            gpus=[
                miner_pb2.GpuInfo(name=gpu.name, vram_bytes=gpu.vram_bytes, count=gpu.count)
                for gpu in self._backend.gpus()
            ],
            max_concurrency=self._capacity,
            backend=self._backend.backend_name,
            version=_version(),
            public_key=public_key_of(self._signing_seed),
            payout_address=self._config.payout_address,
        )

    async def _backoff_sleep(self, seconds: float) -> None:
        # A drain ends the wait early: there is nothing to drain while disconnected.
        # asyncio.timeout, not wait_for, which on Python 3.11 can drop a stop()'s cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._drain_requested.wait()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "cannot reach the coordinator at %s (%s); retrying in %.1fs (attempt %d)",
            self._config.coordinator,
            _describe(exc),
            wait,
            state.attempt_number + 1,
        )


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)


def _version() -> str:
    try:
        return importlib.metadata.version("aitbc")
    except importlib.metadata.PackageNotFoundError:
        # Run from a source tree that was never installed.
        return "0+unknown"
