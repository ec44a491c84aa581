"""The blocking client, on a sync gRPC channel."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, Unpack

import grpc

from aitbc.client._channel import ChannelSettings
from aitbc.client._convert import as_dicts, event_from_proto, job_from_proto, page_from_proto
from aitbc.client._requests import Scheduling, list_request, submit_request
from aitbc.client.errors import deadline_as_timeout, translate_rpc_errors
from aitbc.client.models import Job, JobEvent, JobPage, JobStatus, SamplingOptions, SamplingParams
from aitbc.config import DEFAULT_MODEL
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc, models_pb2, models_pb2_grpc, network_pb2, network_pb2_grpc


class Client:
    """A blocking client of the coordinator's `JobService`.

    `target` is the coordinator's gRPC address, "HOST:PORT" (default `$AITBC_COORDINATOR`, else
    127.0.0.1:50051); `api_key` defaults to `$AITBC_API_KEY`, else the key saved in `~/.aitbc`.
    `timeout` bounds each unary call in seconds. Pass `credentials` (e.g. `grpc.ssl_channel_credentials()`)
    for a TLS channel. Every failed call raises `AitbcApiError`. Use as a context manager, or `close()`.
    """

    def __init__(
        self,
        target: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._settings = ChannelSettings.resolve(target, api_key, timeout, credentials)
        self._channel = self._settings.open_channel()
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._models = models_pb2_grpc.ModelServiceStub(self._channel)
        self._network = network_pb2_grpc.NetworkServiceStub(self._channel)

    @property
    def target(self) -> str:
        """The coordinator address this client talks to."""
        return self._settings.target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def submit_job(
        self,
        prompt: str,
        model: str = DEFAULT_MODEL,
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

        Sampling parameters (`max_tokens`, `temperature`, `top_p`, `stream`) come from `params` and/or
        keyword arguments, the latter winning. An unknown parameter name raises `ValueError`.

        Scheduling: with no online miner able to run the job the coordinator refuses it (UNAVAILABLE,
        reason NO_ELIGIBLE_MINER) unless `queue_if_unavailable`; `priority` is "high", "normal" or "low";
        `max_price` caps the estimated cost in µcr (1 credit = 1,000,000 µcr); a retry with the same
        `idempotency_key` returns the same job; `ttl` (seconds or a timedelta) bounds how long it may wait for a miner.
        """
        scheduling = Scheduling(queue_if_unavailable, priority, max_price, idempotency_key, ttl)
        request = submit_request(prompt, model, params, param_kwargs, scheduling)
        with translate_rpc_errors():
            response = self._stub.SubmitJob(request, **self._settings.unary_options)
        return job_from_proto(response.job)

    def list_models(self) -> list[dict[str, Any]]:
        """The model catalog, each entry with the online miners serving it and their free slots."""
        with translate_rpc_errors():
            response = self._models.ListModels(models_pb2.ListModelsRequest(), **self._settings.unary_options)
        return as_dicts(response.data)

    def list_miners(self) -> list[dict[str, Any]]:
        """Miners the coordinator knows, online ones first, with their reputation (0..10000)."""
        with translate_rpc_errors():
            response = self._network.ListMiners(network_pb2.ListMinersRequest(), **self._settings.unary_options)
        return as_dicts(response.miners)

    def get_job(self, job_id: str) -> Job:
        """One job, with its output so far."""
        with translate_rpc_errors():
            response = self._stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), **self._settings.unary_options)
        return job_from_proto(response.job)

    def list_jobs(
        self, status: JobStatus | str | None = None, limit: int | None = None, page_token: str | None = None
    ) -> JobPage:
        """One page of the caller's jobs, newest first, optionally only those in `status`."""
        request = list_request(status, limit, page_token)
        with translate_rpc_errors():
            response = self._stub.ListJobs(request, **self._settings.unary_options)
        return page_from_proto(response)

    def iter_jobs(self, status: JobStatus | str | None = None) -> Iterator[Job]:
        """Every one of the caller's jobs, newest first, fetching further pages as needed."""
        page_token: str | None = None
        while True:
            page = self.list_jobs(status, page_token=page_token)
            yield from page.jobs
            if page.next_page_token is None:
                return
            page_token = page.next_page_token

    def cancel_job(self, job_id: str) -> Job:
        """Cancel an unfinished job; the returned job says how many tokens were produced (and charged)."""
        with translate_rpc_errors():
            response = self._stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id), **self._settings.unary_options)
        return job_from_proto(response.job)

    def stream(self, job_id: str, from_seq: int = 0) -> Generator[JobEvent, None, None]:
        """The job's events in sequence order, from `from_seq` on, ending with the one that reaches a final state.

        Pass the last seen `seq` + 1 as `from_seq` to resume a broken stream without repeats. To stop
        listening early, `close()` the generator, which ends the call.
        """
        return self._watch(job_id, from_seq, timeout_s=None)

    def wait_for_job(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job is completed, failed or canceled, and return it.

        Follows the watch stream rather than polling. Raises `TimeoutError` after `timeout` seconds.
        """
        with deadline_as_timeout(job_id, timeout):
            for _ in self._watch(job_id, 0, timeout_s=timeout):
                pass
        return self.get_job(job_id)

    def _watch(self, job_id: str, from_seq: int, timeout_s: float | None) -> Generator[JobEvent, None, None]:
        request = jobs_pb2.WatchJobRequest(job_id=job_id, from_seq=from_seq)
        call = self._stub.WatchJob(request, **self._settings.call_options(timeout_s))
        try:
            with translate_rpc_errors():
                for response in call:
                    event = event_from_proto(response)
                    yield event
                    if event.is_final:
                        return
        finally:
            # Ends the RPC when the consumer stops early or the final event was not the last one sent.
            call.cancel()
