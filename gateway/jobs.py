"""The JobService calls the WebSocket and OpenAI surfaces make, typed.

REST reaches the same methods through the route table; these surfaces need
the messages themselves (to follow a job's events), so they call by the same
descriptors with the generated classes.
"""

from __future__ import annotations

from aitbc.v1 import jobs_pb2, models_pb2
from gateway.rpc import CoordinatorClient, MessageStream

_JOBS = jobs_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name
_MODELS = models_pb2.DESCRIPTOR.services_by_name["ModelService"].methods_by_name

FINAL_STATES = frozenset({jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELED})


def final_state(event: jobs_pb2.WatchJobResponse) -> jobs_pb2.JobState | None:
    """The state an event ends the job in, if it does."""
    if event.WhichOneof("event") == "state_change" and event.state_change.status in FINAL_STATES:
        return event.state_change.status
    return None


class JobClient:
    def __init__(self, coordinator: CoordinatorClient) -> None:
        self._coordinator = coordinator

    async def submit(self, request: jobs_pb2.SubmitJobRequest, api_key: str | None) -> jobs_pb2.Job:
        response = await self._coordinator.unary(_JOBS["SubmitJob"], request, jobs_pb2.SubmitJobResponse, api_key)
        return response.job

    async def cancel(self, job_id: str, api_key: str | None) -> jobs_pb2.Job:
        request = jobs_pb2.CancelJobRequest(job_id=job_id)
        response = await self._coordinator.unary(_JOBS["CancelJob"], request, jobs_pb2.CancelJobResponse, api_key)
        return response.job

    async def watch(
        self, job_id: str, api_key: str | None, from_seq: int = 0
    ) -> MessageStream[jobs_pb2.WatchJobResponse]:
        request = jobs_pb2.WatchJobRequest(job_id=job_id, from_seq=from_seq)
        return await self._coordinator.open_stream(_JOBS["WatchJob"], request, jobs_pb2.WatchJobResponse, api_key)

    async def watch_account(self, api_key: str | None) -> MessageStream[jobs_pb2.WatchAccountJobsResponse]:
        """Every job of the key's account as it changes; open once the coordinator says the feed is live
        (its first message), so that nothing that happens after this returns is missed."""
        request = jobs_pb2.WatchAccountJobsRequest()
        return await self._coordinator.open_stream(
            _JOBS["WatchAccountJobs"], request, jobs_pb2.WatchAccountJobsResponse, api_key
        )

    async def models(self, api_key: str | None) -> models_pb2.ListModelsResponse:
        """The catalog, each model with the online miners serving it."""
        return await self._coordinator.unary(
            _MODELS["ListModels"], models_pb2.ListModelsRequest(), models_pb2.ListModelsResponse, api_key
        )

    async def authenticate(self, api_key: str | None) -> None:
        """Raise the coordinator's 401/403 for a key it does not accept.

        ListModels is the cheapest call that any valid key may make and that
        changes nothing; the protocol has no call of its own for this.
        """
        await self._coordinator.unary(
            _MODELS["ListModels"], models_pb2.ListModelsRequest(), models_pb2.ListModelsResponse, api_key
        )
