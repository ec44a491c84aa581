"""Public call arguments to request messages, validated the same way for both clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aitbc.client._convert import state_to_proto
from aitbc.client.models import JobStatus, SamplingParams
from aitbc.v1 import jobs_pb2

_PARAM_NAMES = frozenset(field.name for field in dataclasses.fields(SamplingParams))


def submit_request(
    prompt: str,
    model: str,
    params: SamplingParams | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
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
    return jobs_pb2.SubmitJobRequest(prompt=prompt, model=model, params=sampling)


def list_request(status: JobStatus | str | None, limit: int | None, page_token: str | None) -> jobs_pb2.ListJobsRequest:
    """Unset arguments stay unset on the wire: all states, the coordinator's page size, the first page."""
    return jobs_pb2.ListJobsRequest(
        status=state_to_proto(status) if status is not None else jobs_pb2.JOB_STATE_UNSPECIFIED,
        limit=limit or 0,
        page_token=page_token or "",
    )
