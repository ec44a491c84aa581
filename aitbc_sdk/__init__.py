"""The seed documents' SDK spelling, on top of `aitbc.client`.

    from aitbc_sdk import AITBCClient

    client = AITBCClient(api_url="https://aitbc.bubuit.net/api", api_key="...")
    job = client.submit_job(prompt="What is the capital of France?", params={"max_tokens": 100})
    print(client.wait_for_job(job.id, timeout=60).output)

An `http://` or `https://` `api_url` is the HTTP gateway's base URL, the seed's spelling: the client
talks REST and Server-Sent Events to it. "HOST:PORT", "grpc://HOST[:PORT]" (plaintext, default port
50051) and "grpcs://HOST[:PORT]" (TLS, default port 443) name the coordinator's gRPC endpoint instead.
Either way the methods, results, errors and retries are the same.
"""

from aitbc.client import AitbcApiError, Job, JobStatus, StatusCode
from aitbc_sdk._client import AITBCClient, parse_api_url

__all__ = ["AITBCClient", "AitbcApiError", "Job", "JobStatus", "StatusCode", "parse_api_url"]
