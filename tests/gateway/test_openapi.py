"""The OpenAPI document: every annotated route, unique operationIds, schemas that resolve."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx

import aitbc.v1
from aitbc.api_descriptors import api_files
from gateway.openapi import build_openapi
from gateway.routes import RouteTable

TABLE = RouteTable.from_files(api_files(aitbc.v1))
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_document_structure_is_valid() -> None:
    document = build_openapi(TABLE)
    assert document["openapi"].startswith("3.0.")
    assert document["info"]["title"]
    assert document["info"]["version"]
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref

    operation_ids = []
    for path, operations in document["paths"].items():
        assert path.startswith("/")
        for method, operation in operations.items():
            assert method in HTTP_METHODS
            operation_ids.append(operation["operationId"])
            assert operation["responses"]
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), path
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
    assert len(operation_ids) == len(set(operation_ids))


def test_every_annotated_route_is_documented() -> None:
    paths = build_openapi(TABLE)["paths"]
    for route in TABLE.routes:
        operation = paths[route.template.openapi_path()][route.http_method.lower()]
        assert operation["operationId"] == route.operation_id
        assert str(route.success_status) in operation["responses"]
    assert paths["/v1/jobs"]["post"]["operationId"] == "JobService_SubmitJob"
    assert "201" in paths["/v1/jobs"]["post"]["responses"]
    assert {"/health", "/v1/completions", "/v1/chat/completions"} <= paths.keys()


def test_schemas_follow_the_json_rules() -> None:
    document = build_openapi(TABLE)
    schemas = document["components"]["schemas"]
    assert schemas["aitbc.v1.JobState"]["enum"] == [
        "unspecified",
        "pending",
        "assigned",
        "running",
        "completed",
        "failed",
        "canceled",
        "canceling",
    ]
    job = schemas["aitbc.v1.Job"]["properties"]
    assert job["job_id"] == {"type": "string", "readOnly": True}
    assert job["created_at"] == {"type": "string", "format": "date-time", "readOnly": True}
    assert job["status"] == {"allOf": [{"$ref": "#/components/schemas/aitbc.v1.JobState"}], "readOnly": True}
    assert job["messages"] == {"type": "array", "items": {"$ref": "#/components/schemas/aitbc.v1.ChatMessage"}}
    assert schemas["aitbc.v1.CancelJobRequest"]["required"] == ["job_id"]

    submit = document["paths"]["/v1/jobs"]["post"]
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/aitbc.v1.SubmitJobRequest"}
    created = submit["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/aitbc.v1.Job"}

    listing = document["paths"]["/v1/jobs"]["get"]
    assert [p["name"] for p in listing["parameters"]] == [
        "status",
        "limit",
        "page_token",
        "created_after",
        "created_before",
        "days",
        "model",
    ]
    watch = document["paths"]["/v1/jobs/{job_id}/stream"]["get"]
    assert set(watch["responses"]["200"]["content"]) == {"text/event-stream", "application/x-ndjson"}
    assert {p["name"] for p in watch["parameters"]} == {"job_id", "from_seq", "Last-Event-ID"}


async def test_served_with_docs_and_under_api(http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=http.base_url) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
        under_api = (await anonymous.get("/api/openapi.json")).json()
        docs = await anonymous.get("/docs")
    assert document["servers"] == [{"url": "/"}]
    assert under_api["servers"] == [{"url": "/api"}]
    assert document["paths"] == under_api["paths"]
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text
    # Swagger UI from the gateway itself (vendored), not a CDN: /docs works offline.
    assert "https://" not in docs.text
    assert '<script src="/static/docs.js">' in docs.text


def test_an_export_is_documented_as_a_document() -> None:
    operation = build_openapi(TABLE)["paths"]["/v1/jobs:export"]["get"]
    content = operation["responses"]["200"]["content"]
    assert sorted(content) == ["application/json", "text/csv"]
    assert content["text/csv"]["schema"] == {"type": "string"}
    assert content["application/json"]["schema"] == {"type": "array", "items": {"type": "object"}}
    assert "Last-Event-ID" not in [parameter["name"] for parameter in operation["parameters"]]


def _unwrap(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without the allOf that carries a description next to a $ref."""
    return schema["allOf"][0] if "allOf" in schema else schema


def test_the_document_states_the_limits_the_server_enforces() -> None:
    document = build_openapi(TABLE)
    schemas = document["components"]["schemas"]
    params = schemas["aitbc.v1.SamplingParams"]
    assert params["additionalProperties"] is False
    fields = params["properties"]
    assert (fields["max_tokens"]["minimum"], fields["max_tokens"]["maximum"]) == (1, 8192)
    assert (fields["temperature"]["minimum"], fields["temperature"]["maximum"]) == (0, 2)
    assert fields["stop"]["maxItems"] == 4
    assert (fields["stop"]["items"]["minLength"], fields["stop"]["items"]["maxLength"]) == (1, 64)
    submit = schemas["aitbc.v1.SubmitJobRequest"]["properties"]
    assert submit["prompt"]["maxLength"] == 200_000
    assert schemas["aitbc.v1.QuoteJobRequest"]["required"] == ["prompt"]
    [limit] = [p for p in document["paths"]["/v1/jobs"]["get"]["parameters"] if p["name"] == "limit"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (0, 1000)
    assert all(
        schema.get("additionalProperties") is False
        for name, schema in schemas.items()
        if name.startswith("aitbc.v1.") and schema.get("type") == "object"
    )


def test_every_route_lists_its_error_responses() -> None:
    document = build_openapi(TABLE)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                continue
            responses = operation["responses"]
            assert {"401", "default"} <= set(responses), (method, path)
            if operation.get("requestBody"):
                assert {"400", "413"} <= set(responses), (method, path)
    openai_error = document["paths"]["/v1/chat/completions"]["post"]["responses"]["400"]
    assert openai_error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OpenAIError"}
    assert "/v1/models/{model_id}" in document["paths"]
    assert "/jobs/submit" in document["paths"]


def test_the_proto_comments_are_summaries_and_descriptions() -> None:
    document = build_openapi(TABLE)
    submit = document["paths"]["/v1/jobs"]["post"]
    assert submit["summary"] == "Queue a job"
    assert "durable" in submit["description"]
    assert "aitbc.v1.JobService.SubmitJob" in submit["description"]
    schemas = document["components"]["schemas"]
    assert "Sampling parameters" in schemas["aitbc.v1.SamplingParams"]["description"]
    max_tokens = schemas["aitbc.v1.SamplingParams"]["properties"]["max_tokens"]
    assert max_tokens["description"].startswith("Tokens to generate")
    status = schemas["aitbc.v1.Job"]["properties"]["status"]
    assert _unwrap(status["allOf"][0] if "readOnly" in status else status) == {
        "$ref": "#/components/schemas/aitbc.v1.JobState"
    }
