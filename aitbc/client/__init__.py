"""The AITBC client SDK: submit inference jobs to a coordinator and follow them.

    from aitbc.client import Client

    with Client() as client:
        job = client.submit_job("Explain machine learning in simple terms", max_tokens=100)
        for event in client.stream(job.job_id):
            print(event.text, end="", flush=True)

`AsyncClient` offers the same methods for asyncio. Both talk gRPC to a coordinator ("HOST:PORT",
"grpc[s]://...") or REST and Server-Sent Events to the HTTP gateway ("http[s]://HOST/api"), alike.
Failed calls raise `AitbcApiError`, whose `code` is a `StatusCode` (the gRPC code by name, so that
reading it needs no grpc import).
"""

from aitbc.client._status import StatusCode
from aitbc.client.async_client import AsyncClient
from aitbc.client.errors import AitbcApiError
from aitbc.client.models import Job, JobEvent, JobPage, JobStatus, Routing, SamplingOptions, SamplingParams, Usage
from aitbc.client.sync_client import Client

__all__ = [
    "AitbcApiError",
    "AsyncClient",
    "Client",
    "Job",
    "JobEvent",
    "JobPage",
    "JobStatus",
    "Routing",
    "SamplingOptions",
    "SamplingParams",
    "StatusCode",
    "Usage",
]
