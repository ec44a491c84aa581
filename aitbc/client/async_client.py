"""The asyncio client, over a grpc.aio channel or the HTTP gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, Unpack

import grpc
from google.api import httpbody_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from aitbc.client import _retry
from aitbc.client._connection import Connection
from aitbc.client._convert import as_dicts, event_from_proto, job_from_proto, page_from_proto
from aitbc.client._requests import (
    CANCEL_JOB,
    CREATE_WEBHOOK,
    DELETE_WEBHOOK,
    EXPORT_JOBS,
    GET_JOB,
    GET_JOB_STATS,
    GET_WEBHOOK,
    LIST_API_KEYS,
    LIST_JOBS,
    LIST_MINERS,
    LIST_MODELS,
    LIST_WEBHOOKS,
    REVOKE_API_KEY,
    SUBMIT_JOB,
    TEST_WEBHOOK,
    WATCH_JOB,
    History,
    Scheduling,
    list_request,
    new_idempotency_key,
    submit_request,
    with_history,
)
from aitbc.client._transport import M
from aitbc.client.errors import AitbcApiError, deadline_as_timeout
from aitbc.client.models import Job, JobEvent, JobPage, JobStatus, SamplingOptions, SamplingParams
from aitbc.v1 import jobs_pb2, keys_pb2, models_pb2, network_pb2, webhooks_pb2


class AsyncClient:
    """An asyncio client of the coordinator's `JobService`; the same API as `Client`, awaitable.

    `target` is where to call: a coordinator's gRPC address, "HOST:PORT" or "grpc[s]://HOST[:PORT]", or an
    HTTP gateway's base URL, "http[s]://HOST[:PORT][/PATH]" (e.g. "https://aitbc.bubuit.net/api"), which is
    called over REST and Server-Sent Events with the same methods, results and errors. The default is
    `$AITBC_COORDINATOR`, else 127.0.0.1:50051. `api_key` defaults to `$AITBC_API_KEY`, else the key saved
    in `~/.aitbc`. `timeout` bounds each unary call in seconds. A "grpcs://" target uses TLS with the
    system's trust store; pass `credentials` for a private CA or mutual TLS (to any gRPC target), e.g.
    `aitbc.tls.channel_credentials(ca=Path("ca.pem"), cert=..., key=...)`.

    Calls that are safe to repeat are retried up to `max_retries` times when refused for now (429/503,
    RESOURCE_EXHAUSTED/UNAVAILABLE) or when the connection fails, after the server's `Retry-After` or
    else a short backoff. Every failed call raises `AitbcApiError`. Use with `async with`, or
    `await close()`.
    """

    def __init__(
        self,
        target: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        max_retries: int = 3,
    ) -> None:
        self._connection = Connection.resolve(target, api_key, timeout, credentials)
        self._retry = _retry.RetryPolicy(max_retries)
        self._transport = self._connection.open_async()

    @property
    def target(self) -> str:
        """Where this client calls: the coordinator's gRPC address, or the gateway's base URL."""
        return self._transport.target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; calls in flight are cancelled."""
        await self._transport.close()

    async def _unary(
        self, method: MethodDescriptor, request: Message, response_type: type[M], *, retry: bool = True
    ) -> M:
        async def attempt() -> M:
            return await self._transport.unary(method, request, response_type, self._connection.timeout)

        return await _retry.call_async(self._retry, method.name, attempt) if retry else await attempt()

    async def submit_job(
        self,
        prompt: str,
        model: str | None = None,
        params: SamplingParams | Mapping[str, Any] | None = None,
        *,
        queue_if_unavailable: bool = False,
        priority: str | None = None,
        max_price: int | None = None,
        idempotency_key: str | None = None,
        ttl: float | timedelta | None = None,
        **param_kwargs: Unpack[SamplingOptions],
    ) -> Job:
        """Queue a job and route it; it is durable once this returns.

        `model` is a catalog id or alias (`aitbc models` lists them); None runs the job on the coordinator's
        default model.

        Sampling parameters (`max_tokens`, `temperature`, `top_p`, `stream`) come from `params` and/or
        keyword arguments, the latter winning. An unknown parameter name raises `ValueError`.

        Scheduling: with no online miner able to run the job the coordinator refuses it (UNAVAILABLE,
        reason NO_ELIGIBLE_MINER, never retried) unless `queue_if_unavailable`; `priority` is "high",
        "normal" or "low"; `max_price` caps the estimated cost in µcr (1 credit = 1,000,000 µcr); a retry with the same
        `idempotency_key` returns the same job; `ttl` (seconds or a timedelta) bounds how long it may wait
        for a miner. Without an `idempotency_key` (and with retries on), the SDK gives the submit one of
        its own, "aitbc-sdk-" and 32 hex digits, so that retrying it cannot create a second job.
        """
        if idempotency_key is None and self._retry.max_retries:
            idempotency_key = new_idempotency_key()
        scheduling = Scheduling(queue_if_unavailable, priority, max_price, idempotency_key, ttl)
        request = submit_request(prompt, model, params, param_kwargs, scheduling)
        # Only a submit with a key is safe to repeat: the coordinator answers a repeat with the same job.
        response = await self._unary(SUBMIT_JOB, request, jobs_pb2.SubmitJobResponse, retry=bool(idempotency_key))
        return job_from_proto(response.job)

    async def list_models(self) -> list[dict[str, Any]]:
        """The model catalog, each entry with the online miners serving it and their free slots."""
        response = await self._unary(LIST_MODELS, models_pb2.ListModelsRequest(), models_pb2.ListModelsResponse)
        return as_dicts(response.data)

    async def list_api_keys(self) -> list[dict[str, Any]]:
        """The API keys of the caller's account (every key for an admin key): id, role, created, last used, revoked.

        Keys themselves are never stored, so never listed; each is named by its `key_id`.
        """
        response = await self._unary(LIST_API_KEYS, keys_pb2.ListApiKeysRequest(), keys_pb2.ListApiKeysResponse)
        return as_dicts(response.keys)

    async def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key of the caller's account: it stops working at once, open streams included. Final.

        Retried like a read: revoking a revoked key answers it again.
        """
        request = keys_pb2.RevokeApiKeyRequest(key_id=key_id)
        response = await self._unary(REVOKE_API_KEY, request, keys_pb2.RevokeApiKeyResponse)
        [key] = as_dicts([response.key])
        return key

    async def list_miners(self) -> list[dict[str, Any]]:
        """Miners the coordinator knows, online ones first, with their reputation (0..10000)."""
        response = await self._unary(LIST_MINERS, network_pb2.ListMinersRequest(), network_pb2.ListMinersResponse)
        return as_dicts(response.miners)

    async def get_job(self, job_id: str) -> Job:
        """One job, with its output so far."""
        response = await self._unary(GET_JOB, jobs_pb2.GetJobRequest(job_id=job_id), jobs_pb2.GetJobResponse)
        return job_from_proto(response.job)

    async def list_jobs(
        self,
        status: JobStatus | str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        *,
        model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        days: int | None = None,
    ) -> JobPage:
        """One page of the caller's jobs, newest first, optionally only those in `status`, of `model`, created
        in [`created_after`, `created_before`) or in the last `days` days. Pages stay put as jobs arrive."""
        history = History(None, model, created_after, created_before, days)
        request = with_history(list_request(status, limit, page_token), history)
        return page_from_proto(await self._unary(LIST_JOBS, request, jobs_pb2.ListJobsResponse))

    async def export_jobs(
        self,
        format: str = "json",
        *,
        status: JobStatus | str | None = None,
        model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        days: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Every matching job as one document, "json" (an array) or "csv" (RFC 4180 with a header row), in
        chunks of bytes to write out as they come: any history exports in constant memory. Not resumed: a
        broken export raises `AitbcApiError`, and a partial file must be discarded."""
        history = History(status, model, created_after, created_before, days)
        request = with_history(jobs_pb2.ExportJobsRequest(format=format), history)
        chunks = self._transport.stream(EXPORT_JOBS, request, httpbody_pb2.HttpBody, None)
        try:
            async for chunk in chunks:
                yield chunk.data
        finally:
            await chunks.aclose()

    async def job_stats(
        self,
        *,
        model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        days: int | None = None,
    ) -> dict[str, Any]:
        """Totals over the caller's jobs created in a period (default: all time): `total_jobs`, `counts` by
        state, `success_rate`, mean/p50/p95 completion seconds, tokens, `total_spent` (µcr)."""
        history = History(None, model, created_after, created_before, days)
        request = with_history(jobs_pb2.GetJobStatsRequest(), history)
        [stats] = as_dicts([(await self._unary(GET_JOB_STATS, request, jobs_pb2.GetJobStatsResponse)).stats])
        return stats

    async def create_webhook(self, url: str, events: Sequence[str]) -> dict[str, Any]:
        """Register `url` for `events` ("job.completed", "job.failed", "job.canceled"); the answer's `secret`
        (to check deliveries' signatures) is shown this once. Not retried: a repeat would make a second one."""
        request = webhooks_pb2.CreateWebhookRequest(url=url, events=list(events))
        response = await self._unary(CREATE_WEBHOOK, request, webhooks_pb2.CreateWebhookResponse, retry=False)
        [webhook] = as_dicts([response.webhook])
        return {**webhook, "secret": response.secret}

    async def list_webhooks(self) -> list[dict[str, Any]]:
        response = await self._unary(
            LIST_WEBHOOKS, webhooks_pb2.ListWebhooksRequest(), webhooks_pb2.ListWebhooksResponse
        )
        return as_dicts(response.webhooks)

    async def get_webhook(self, webhook_id: str) -> dict[str, Any]:
        """The webhook and its `recent_deliveries` (status, attempts, last status code and latency)."""
        request = webhooks_pb2.GetWebhookRequest(webhook_id=webhook_id)
        response = await self._unary(GET_WEBHOOK, request, webhooks_pb2.GetWebhookResponse)
        [webhook] = as_dicts([response.webhook])
        return {**webhook, "recent_deliveries": as_dicts(response.recent_deliveries)}

    async def delete_webhook(self, webhook_id: str) -> None:
        request = webhooks_pb2.DeleteWebhookRequest(webhook_id=webhook_id)
        await self._unary(DELETE_WEBHOOK, request, webhooks_pb2.DeleteWebhookResponse, retry=False)

    async def test_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Queue a `webhook.test` event to the webhook; returns its delivery (see `get_webhook` for the outcome)."""
        request = webhooks_pb2.TestWebhookRequest(webhook_id=webhook_id)
        response = await self._unary(TEST_WEBHOOK, request, webhooks_pb2.TestWebhookResponse, retry=False)
        [delivery] = as_dicts([response.delivery])
        return delivery

    async def iter_jobs(self, status: JobStatus | str | None = None) -> AsyncIterator[Job]:
        """Every one of the caller's jobs, newest first, fetching further pages as needed."""
        page_token: str | None = None
        while True:
            page = await self.list_jobs(status, page_token=page_token)
            for job in page.jobs:
                yield job
            if page.next_page_token is None:
                return
            page_token = page.next_page_token

    async def cancel_job(self, job_id: str) -> Job:
        """Cancel an unfinished job; the returned job says how many tokens were produced (and charged).

        Not retried: a repeat of a cancel that went through would fail as JOB_NOT_CANCELABLE.
        """
        request = jobs_pb2.CancelJobRequest(job_id=job_id)
        return job_from_proto((await self._unary(CANCEL_JOB, request, jobs_pb2.CancelJobResponse, retry=False)).job)

    def stream(self, job_id: str, from_seq: int = 0) -> AsyncGenerator[JobEvent, None]:
        """The job's events in sequence order, from `from_seq` on, ending with the one that reaches a final state.

        A connection that breaks is resumed after the last event seen, without repeats or gaps (retried as
        other calls are). To resume later yourself, pass the last seen `seq` + 1 as `from_seq`. To stop
        listening early, `aclose()` the generator (or use `contextlib.aclosing`), which ends the call.
        """
        return self._watch(job_id, from_seq, timeout_s=None)

    # The timeout is the watch call's deadline, not an asyncio one, and keeps the signature of
    # Client.wait_for_job; callers may still wrap this in asyncio.timeout().
    async def wait_for_job(self, job_id: str, timeout: float = 60.0) -> Job:  # noqa: ASYNC109
        """Wait until the job is completed, failed or canceled, and return it.

        Follows the watch stream rather than polling. Raises `TimeoutError` after `timeout` seconds.
        """
        with deadline_as_timeout(job_id, timeout):
            async for _ in self._watch(job_id, 0, timeout_s=timeout):
                pass
        return await self.get_job(job_id)

    async def _watch(self, job_id: str, from_seq: int, timeout_s: float | None) -> AsyncGenerator[JobEvent, None]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        retries = _retry.Retries(self._retry, "WatchJob")
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            request = jobs_pb2.WatchJobRequest(job_id=job_id, from_seq=from_seq)
            events = self._transport.stream(WATCH_JOB, request, jobs_pb2.WatchJobResponse, remaining)
            try:
                async for response in events:
                    event = event_from_proto(response)
                    retries.reset()
                    yield event
                    from_seq = event.seq + 1
                    if event.is_final:
                        return
                return
            except AitbcApiError as error:
                delay = retries.delay(error)
                if deadline is not None and loop.time() + delay >= deadline:
                    raise _retry.too_late(error) from error
                await _retry.async_sleep(delay)
            finally:
                # Ends the call when the reader stops early or the final event was not the last one sent.
                await events.aclose()
