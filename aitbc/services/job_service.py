"""JobService: client calls translated onto the coordinator."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.api import httpbody_pb2

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.errors import invalid_argument
from aitbc.domain.history import export_format
from aitbc.domain.jobs import JobSpec, SamplingParams
from aitbc.services.convert import (
    event_to_proto,
    feed_update_to_proto,
    history_query,
    job_to_proto,
    spec_from_submit,
    stats_to_proto,
)
from aitbc.services.export_format import encode_export
from aitbc.services.interceptors import Context, current_principal
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc


def _job_id(job_id: str) -> str:
    if not job_id:
        raise invalid_argument("job_id", "is required")
    return job_id


class JobService(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def SubmitJob(self, request: jobs_pb2.SubmitJobRequest, context: Context) -> jobs_pb2.SubmitJobResponse:
        spec = spec_from_submit(request, default_model=self._coordinator.default_model)
        record = await self._coordinator.submit(
            current_principal(), spec, queue_if_unavailable=request.queue_if_unavailable
        )
        return jobs_pb2.SubmitJobResponse(job=job_to_proto(record))

    async def QuoteJob(self, request: jobs_pb2.QuoteJobRequest, context: Context) -> jobs_pb2.QuoteJobResponse:
        params = SamplingParams.build(max_tokens=request.max_tokens if request.HasField("max_tokens") else None)
        spec = JobSpec.build(
            prompt=request.prompt, model=request.model or self._coordinator.default_model, params=params
        )
        quote = self._coordinator.quote(
            current_principal(), spec, payout_address_required=request.payout_address_required
        )
        return jobs_pb2.QuoteJobResponse(
            model=quote.model,
            miner_id=quote.miner_id,
            payout_address=quote.payout_address,
            miner_reputation=quote.reputation,
            estimated_cost=quote.estimated_cost,
            prompt_tokens=quote.prompt_tokens,
            max_tokens=quote.max_tokens,
        )

    async def GetJob(self, request: jobs_pb2.GetJobRequest, context: Context) -> jobs_pb2.GetJobResponse:
        record = await self._coordinator.get(current_principal(), _job_id(request.job_id))
        return jobs_pb2.GetJobResponse(job=job_to_proto(record))

    async def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: Context) -> jobs_pb2.ListJobsResponse:
        query = history_query(request)
        page = await self._coordinator.list_jobs(
            current_principal(), state=query.state, limit=request.limit, page_token=request.page_token, query=query
        )
        return jobs_pb2.ListJobsResponse(
            jobs=[job_to_proto(job) for job in page.jobs], next_page_token=page.next_page_token
        )

    async def CancelJob(self, request: jobs_pb2.CancelJobRequest, context: Context) -> jobs_pb2.CancelJobResponse:
        record = await self._coordinator.cancel(current_principal(), _job_id(request.job_id))
        return jobs_pb2.CancelJobResponse(job=job_to_proto(record))

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.WatchJobResponse]:
        events = self._coordinator.watch(current_principal(), _job_id(request.job_id), request.from_seq)
        async for event in events:
            yield event_to_proto(event)

    async def WatchAccountJobs(
        self, request: jobs_pb2.WatchAccountJobsRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.WatchAccountJobsResponse]:
        async for update in self._coordinator.watch_account(current_principal()):
            yield feed_update_to_proto(update)

    async def ExportJobs(
        self, request: jobs_pb2.ExportJobsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        form = export_format(request.format)
        # Filters are checked before the first chunk, so a bad one is an error status, not a cut-off document.
        pages = self._coordinator.history.export(current_principal(), history_query(request))
        async for chunk in encode_export(pages, form):
            yield chunk

    async def GetJobStats(self, request: jobs_pb2.GetJobStatsRequest, context: Context) -> jobs_pb2.GetJobStatsResponse:
        job_filter, stats = await self._coordinator.history.stats(current_principal(), history_query(request))
        return jobs_pb2.GetJobStatsResponse(stats=stats_to_proto(job_filter, stats))
