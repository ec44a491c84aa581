"""One attempt of one job on this miner: run the backend and report on the stream."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time

from aitbc.domain.canonical import text_hash
from aitbc.domain.receipts import MinerAttestation
from aitbc.logs import bind_log_fields
from aitbc.v1 import miner_pb2
from miner.backends.base import Backend, ChatMessage, FinishReason, GenerationRequest, InvalidRequestError
from miner.outbox import Outbox

log = logging.getLogger(__name__)


class StopReason(enum.Enum):
    """Why a job's task is cancelled, which decides what the job reports."""

    # The coordinator canceled the assignment: acknowledge with the tokens produced.
    CANCELED = enum.auto()
    # The miner shuts down with the stream still open: fail the attempt so that it resumes elsewhere.
    SHUTDOWN = enum.auto()
    # The stream is gone: nothing to report to; the coordinator re-queues the job on its own.
    DISCONNECTED = enum.auto()


class JobRun:
    """Runs one assignment in its own task and sends JobStarted, JobTokens, then exactly one of JobDone,
    JobFailed or CancelAck (or nothing, once disconnected)."""

    def __init__(self, assignment: miner_pb2.AssignJob, backend: Backend, outbox: Outbox, signing_seed: bytes) -> None:
        self.job_id = assignment.job_id
        self._signing_seed = signing_seed
        self.attempt = assignment.attempt
        self._assignment = assignment
        self._backend = backend
        self._outbox = outbox
        self._received_at = time.monotonic()
        self._stop_reason: StopReason | None = None
        # Tokens handed to the outbox: what the coordinator gets, so what CancelAck and JobDone report.
        self._completion_tokens = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None]:
        if self._task is None:
            raise RuntimeError("the job has not started")
        return self._task

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=f"job {self.job_id} attempt {self.attempt}")
        return self._task

    def stop(self, reason: StopReason) -> None:
        """Cancel the job's task; the first reason given decides what it reports."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self.task.cancel()

    async def _run(self) -> None:
        # The job's task: every line it logs names the job.
        bind_log_fields(job_id=self.job_id, attempt=self.attempt)
        try:
            await self._generate()
        except asyncio.CancelledError:
            await self._report_stop()
            raise
        except InvalidRequestError as exc:
            log.info("job %s attempt %d rejected: %s", self.job_id, self.attempt, exc)
            await self._send_failed(str(exc), retryable=False)
        except Exception as exc:
            log.exception("job %s attempt %d failed", self.job_id, self.attempt)
            await self._send_failed(f"{type(exc).__name__}: {exc}", retryable=True)

    async def _generate(self) -> None:
        request = generation_request(self._assignment)
        prompt_tokens = await self._backend.count_prompt_tokens(request)
        await self._outbox.send(
            miner_pb2.ConnectRequest(
                started=miner_pb2.JobStarted(job_id=self.job_id, attempt=self.attempt, prompt_tokens=prompt_tokens)
            )
        )
        pieces: list[str] = []
        first_token_at: float | None = None
        finish_reason: FinishReason | None = None
        # aclosing: a cancel stops the backend, and waits for it to stop, before the job reports.
        async with contextlib.aclosing(self._backend.generate(request)) as chunks:
            async for chunk in chunks:
                if chunk.text or chunk.token_count:
                    if first_token_at is None:
                        first_token_at = time.monotonic()
                    await self._outbox.send_tokens(self.job_id, self.attempt, chunk.text, chunk.token_count)
                    pieces.append(chunk.text)
                    self._completion_tokens += chunk.token_count
                finish_reason = chunk.finish_reason
        if finish_reason is None:
            raise RuntimeError(f"the {self._backend.backend_name} backend ended without a finish reason")
        total = time.monotonic() - self._received_at
        output = "".join(pieces)
        done = miner_pb2.JobDone(
            job_id=self.job_id,
            attempt=self.attempt,
            output=output,
            prompt_tokens=prompt_tokens,
            completion_tokens=self._completion_tokens,
            finish_reason=finish_reason,
            signature=self._attest(output, prompt_tokens),
        )
        await self._outbox.send(miner_pb2.ConnectRequest(done=done))
        log.info(
            "job %s attempt %d done: %d tokens in %.2fs, the first after %.2fs (%s)",
            self.job_id,
            self.attempt,
            self._completion_tokens,
            total,
            (first_token_at or time.monotonic()) - self._received_at,
            finish_reason,
        )

    def _attest(self, output: str, prompt_tokens: int) -> str:
        """Sign what the whole job produced: the text it resumed from and this attempt's, and their tokens."""
        assignment = self._assignment
        return MinerAttestation(
            job_id=self.job_id,
            attempt=self.attempt,
            output_hash=text_hash(assignment.resume_text + output),
            prompt_tokens=prompt_tokens,
            completion_tokens=assignment.resume_tokens + self._completion_tokens,
        ).sign(self._signing_seed)

    async def _report_stop(self) -> None:
        match self._stop_reason:
            case StopReason.CANCELED:
                ack = miner_pb2.CancelAck(
                    job_id=self.job_id, attempt=self.attempt, completion_tokens=self._completion_tokens
                )
                await self._outbox.send(miner_pb2.ConnectRequest(cancel_ack=ack))
                log.info("job %s attempt %d canceled after %d tokens", self.job_id, self.attempt, ack.completion_tokens)
            case StopReason.SHUTDOWN:
                await self._send_failed("the miner shut down before the job finished", retryable=True)
            case StopReason.DISCONNECTED | None:
                pass

    async def _send_failed(self, error: str, *, retryable: bool) -> None:
        await self._outbox.send(failed_message(self.job_id, self.attempt, error, retryable=retryable))


def generation_request(assignment: miner_pb2.AssignJob) -> GenerationRequest:
    """The backend's view of an assignment; InvalidRequestError names the field that is wrong."""
    params = assignment.params
    # The coordinator fills in every default, so a missing one is a broken assignment, not a default.
    for name in ("max_tokens", "temperature", "top_p"):
        if not params.HasField(name):
            raise InvalidRequestError(f"params.{name} is missing")
    return GenerationRequest(
        prompt=assignment.prompt,
        model=assignment.model,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        messages=tuple(ChatMessage(role=message.role, content=message.content) for message in assignment.messages),
        raw=assignment.raw,
        stop=tuple(params.stop),
        resume_text=assignment.resume_text,
        resume_tokens=assignment.resume_tokens,
    )


def failed_message(job_id: str, attempt: int, error: str, *, retryable: bool) -> miner_pb2.ConnectRequest:
    return miner_pb2.ConnectRequest(
        failed=miner_pb2.JobFailed(job_id=job_id, attempt=attempt, error=error, retryable=retryable)
    )
