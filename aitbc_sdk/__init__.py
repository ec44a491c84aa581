"""The seed documents' SDK spelling, on top of `aitbc.client`.

    from aitbc_sdk import AITBCClient

    client = AITBCClient(api_url="http://127.0.0.1:50051", api_key="...")
    job = client.submit_job(prompt="What is the capital of France?", params={"max_tokens": 100})
    print(client.wait_for_job(job.id, timeout=60).output)

`api_url` names the coordinator's **gRPC** endpoint, not an HTTP base URL. It may be "HOST:PORT",
"http://HOST:PORT", "grpc://HOST:PORT" (plaintext, default port 50051) or "https://HOST[:PORT]" and
"grpcs://HOST[:PORT]" (TLS, default port 443). A path such as the seed's `/api` is ignored.
"""

from aitbc.client import AitbcApiError, Job, JobStatus, StatusCode
from aitbc_sdk._client import AITBCClient, parse_api_url

__all__ = ["AITBCClient", "AitbcApiError", "Job", "JobStatus", "StatusCode", "parse_api_url"]
