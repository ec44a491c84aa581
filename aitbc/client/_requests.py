"""Public call arguments to request messages, validated the same way for both clients."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aitbc.client._convert import state_to_proto
from aitbc.client.models import JobStatus, SamplingParams
from aitbc.v1 import jobs_pb2, keys_pb2, models_pb2, network_pb2, webhooks_pb2

_JOBS = jobs_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name
SUBMIT_JOB = _JOBS["SubmitJob"]
GET_JOB = _JOBS["GetJob"]
LIST_JOBS = _JOBS["ListJobs"]
CANCEL_JOB = _JOBS["CancelJob"]
WATCH_JOB = _JOBS["WatchJob"]
EXPORT_JOBS = _JOBS["ExportJobs"]
GET_JOB_STATS = _JOBS["GetJobStats"]
_WEBHOOKS = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].methods_by_name
CREATE_WEBHOOK = _WEBHOOKS["CreateWebhook"]
LIST_WEBHOOKS = _WEBHOOKS["ListWebhooks"]
GET_WEBHOOK = _WEBHOOKS["GetWebhook"]
DELETE_WEBHOOK = _WEBHOOKS["DeleteWebhook"]
TEST_WEBHOOK = _WEBHOOKS["TestWebhook"]
LIST_MODELS = models_pb2.DESCRIPTOR.services_by_name["ModelService"].methods_by_name["ListModels"]
LIST_MINERS = network_pb2.DESCRIPTOR.services_by_name["NetworkService"].methods_by_name["ListMiners"]
_KEYS = keys_pb2.DESCRIPTOR.services_by_name["KeyService"].methods_by_name
LIST_API_KEYS = _KEYS["ListApiKeys"]
REVOKE_API_KEY = _KEYS["RevokeApiKey"]

_PARAM_NAMES = frozenset(field.name for field in dataclasses.fields(SamplingParams))


@dataclasses.dataclass(frozen=True, slots=True)
class Scheduling:
    """How the coordinator should queue and route a job; see `Client.submit_job`."""

    queue_if_unavailable: bool = False
    priority: str | None = None
    max_price: int | None = None  # µcr
    idempotency_key: str | None = None
    ttl: float | timedelta | None = None


_PRIORITIES = {
    "high": jobs_pb2.JOB_PRIORITY_HIGH,
    "normal": jobs_pb2.JOB_PRIORITY_NORMAL,
    "low": jobs_pb2.JOB_PRIORITY_LOW,
}


def submit_request(
    prompt: str,
    model: str | None,
    params: SamplingParams | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    scheduling: Scheduling = Scheduling(),
) -> jobs_pb2.SubmitJobRequest:
    """Merge `params` with keyword `overrides`, which win; `None` in either means "not given".

    Unset parameters stay unset on the wire, so the coordinator applies its defaults. Unknown names are
    rejected here because the message constructor's error would not say which argument was wrong; values
    are range-checked by the coordinator, which owns the limits.
    """
    base = dataclasses.asdict(params) if isinstance(params, SamplingParams) else dict(params or {})
    unknown = sorted((base.keys() | overrides.keys()) - _PARAM_NAMES)
    if unknown:
        raise ValueError(
            f"unknown sampling parameter(s): {', '.join(unknown)}; expected {', '.join(sorted(_PARAM_NAMES))}"
        )
    given = {name: value for source in (base, overrides) for name, value in source.items() if value is not None}
    sampling = jobs_pb2.SamplingParams(**given)
    request = jobs_pb2.SubmitJobRequest(
        prompt=prompt,
        # Unset: the coordinator applies its default model.
        model=model or "",
        params=sampling,
        queue_if_unavailable=scheduling.queue_if_unavailable,
        idempotency_key=scheduling.idempotency_key or "",
    )
    if scheduling.priority is not None:
        try:
            request.priority = _PRIORITIES[scheduling.priority.lower()]
        except KeyError:
            raise ValueError(f"unknown priority {scheduling.priority!r}; expected high, normal or low") from None
    if scheduling.max_price is not None:
        request.max_price = scheduling.max_price
    if scheduling.ttl is not None:
        ttl = scheduling.ttl if isinstance(scheduling.ttl, timedelta) else timedelta(seconds=scheduling.ttl)
        request.ttl.FromTimedelta(ttl)
    return request


def new_idempotency_key() -> str:
    """The key the SDK gives a submit that has none, so that retrying it cannot make a second job."""
    return f"aitbc-sdk-{uuid.uuid4().hex}"


def list_request(status: JobStatus | str | None, limit: int | None, page_token: str | None) -> jobs_pb2.ListJobsRequest:
    """Unset arguments stay unset on the wire: all states, the coordinator's page size, the first page."""
    return jobs_pb2.ListJobsRequest(
        status=state_to_proto(status) if status is not None else jobs_pb2.JOB_STATE_UNSPECIFIED,
        limit=limit or 0,
        page_token=page_token or "",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class History:
    """Which jobs a list, export or stats call covers; None: no filter. Times are aware datetimes."""

    status: JobStatus | str | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    days: int | None = None


HistoryRequest = TypeVar(
    "HistoryRequest", jobs_pb2.ListJobsRequest, jobs_pb2.ExportJobsRequest, jobs_pb2.GetJobStatsRequest
)


def with_history(request: HistoryRequest, history: History) -> HistoryRequest:
    """`request` with the filters set (GetJobStats has no status filter)."""
    if history.status is not None and not isinstance(request, jobs_pb2.GetJobStatsRequest):
        request.status = state_to_proto(history.status)
    request.model = history.model or ""
    request.days = history.days or 0
    for name in ("created_after", "created_before"):
        moment = getattr(history, name)
        if moment is not None:
            if moment.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime (with a time zone), got {moment!r}")
            getattr(request, name).FromDatetime(moment)
    return request
