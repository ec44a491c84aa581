"""`/openapi.json` and `/docs`: an OpenAPI 3 document derived from the route table and descriptors.

Schemas follow the JSON the gateway speaks (see transcoding.py): proto field
names, enum values in lower case without their prefix, 64-bit integers as
numbers. `google.api.field_behavior` marks fields `required` (REQUIRED) or
`readOnly` (OUTPUT_ONLY); the bounds the server enforces come from
openapi_limits.py; every object refuses unknown properties
(`additionalProperties: false`), as the transcoder does. Summaries and
descriptions are the .proto comments (`aitbc/v1/api_comments.json`, written
by tools/gen_proto.py from the descriptors' source info).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from aitbc import __version__
from gateway.openapi_extra import extra_paths, extra_schemas
from gateway.openapi_limits import limits_of
from gateway.routes import RestRoute, RouteTable, field_at
from gateway.streaming import HTTP_BODY, NDJSON_MEDIA_TYPE, SSE_MEDIA_TYPE
from gateway.transcoding import enum_to_json

JsonObject = dict[str, Any]

_SCALARS: Final[dict[int, JsonObject]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
}

# Well-known types have JSON forms of their own.
_WELL_KNOWN: Final[dict[str, JsonObject]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64"},
    "google.protobuf.Int64Value": {"type": "integer", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "integer", "format": "int64"},
}

ERROR_SCHEMA: Final = "Error"
_ERROR: Final[JsonObject] = {
    "type": "object",
    "required": ["detail", "error_code"],
    "properties": {
        "detail": {"type": "string"},
        "error_code": {"type": "string", "example": "JOB_NOT_FOUND"},
        "field": {"type": "string", "description": "The request field at fault, when there is one."},
    },
}

_DESCRIPTION = """\
REST routes derived from the `google.api.http` annotations of the aitbc.v1 services.
Authenticate with `X-Api-Key: KEY` (or `Authorization: Bearer KEY`).
Streaming routes answer Server-Sent Events for `Accept: text/event-stream`, else NDJSON.
Not described here: the WebSocket endpoints `/v1/jobs/ws` and `/v1/jobs/{job_id}/ws` (see docs/gateway.md).
Every path is also served under `/api`."""


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


@cache
def proto_comments() -> dict[str, str]:
    """The .proto comments by full name (`aitbc.v1.JobService.SubmitJob`, `aitbc.v1.Job.status`)."""
    text = resources.files("aitbc.v1").joinpath("api_comments.json").read_text(encoding="utf-8")
    comments: dict[str, str] = json.loads(text)
    return comments


def _described(schema: JsonObject, description: str | None) -> JsonObject:
    if not description:
        return schema
    # Siblings of a $ref are ignored in OpenAPI 3.0; allOf carries them.
    return (
        {"allOf": [schema], "description": description} if "$ref" in schema else {**schema, "description": description}
    )


def _status_responses(statuses: list[int]) -> JsonObject:
    return {
        str(status): {
            "description": _ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": _ref(ERROR_SCHEMA)}},
        }
        for status in statuses
    }


_ERROR_MEANINGS: Final = {
    400: "a request field is invalid (`field` names it)",
    401: "no API key, or one the coordinator does not accept",
    403: "the key's role may not call this",
    404: "no such resource, or one of another account",
    409: "the resource is in a state that does not allow this",
    413: "the request body is over the gateway's limit",
    429: "too many requests or a full queue; see Retry-After",
    503: "the coordinator or its store is unavailable, or no online miner can run the job",
    504: "the deadline (Grpc-Timeout) passed",
}


def _behaviors(field: FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


class _Schemas:
    """Component schemas, added as messages and enums are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, JsonObject] = {ERROR_SCHEMA: _ERROR}

    def message(self, descriptor: Descriptor) -> JsonObject:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            schema: JsonObject = {"type": "object", "properties": {}, "additionalProperties": False}
            if description := proto_comments().get(descriptor.full_name):
                schema["description"] = description
            # Registered before the fields so that recursive messages end in a $ref.
            self.components[descriptor.full_name] = schema
            for field in descriptor.fields:
                schema["properties"][field.name] = self.field(field)
            required = [f.name for f in descriptor.fields if field_behavior_pb2.REQUIRED in _behaviors(f)]
            if required:
                schema["required"] = required
        return _ref(descriptor.full_name)

    def enum(self, descriptor: EnumDescriptor) -> JsonObject:
        if descriptor.full_name not in self.components:
            values = [enum_to_json(descriptor, value.name) for value in descriptor.values]
            schema: JsonObject = {"type": "string", "enum": values}
            if description := proto_comments().get(descriptor.full_name):
                schema["description"] = description
            self.components[descriptor.full_name] = schema
        return _ref(descriptor.full_name)

    def single(self, field: FieldDescriptor) -> JsonObject:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> JsonObject:
        schema: JsonObject
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            schema = {"type": "object", "additionalProperties": self.single(field.message_type.fields_by_name["value"])}
        elif field.is_repeated:
            items = self.single(field)
            items = items if "$ref" in items else {**items, **limits_of(field.full_name, item=True)}
            schema = {"type": "array", "items": items, **limits_of(field.full_name)}
        else:
            schema = self.single(field)
            limits = limits_of(field.full_name)
            if "$ref" not in schema:
                schema.update(limits)
            elif limits:
                # An enum field that takes fewer values than its enum has (not `unspecified`): both must hold.
                schema = {"allOf": [schema], **limits}
        if field_behavior_pb2.OUTPUT_ONLY in _behaviors(field):
            # Siblings of a $ref are ignored in OpenAPI 3.0; allOf carries the flag.
            schema = {"allOf": [schema], "readOnly": True} if "$ref" in schema else {**schema, "readOnly": True}
        return _described(schema, proto_comments().get(field.full_name))


def _query_parameters(
    schemas: _Schemas, descriptor: Descriptor, prefix: str, bound: set[str], seen: frozenset[str]
) -> list[JsonObject]:
    """Leaf fields not bound by the path or body, by dotted name; recursion stops at a message already on the path."""
    parameters: list[JsonObject] = []
    for field in descriptor.fields:
        name = prefix + field.name
        if name in bound:
            continue
        message = field.message_type
        nested = message is not None and message.full_name not in _WELL_KNOWN and not message.GetOptions().map_entry
        if message is not None and nested and not field.is_repeated:
            if message.full_name not in seen:
                parameters += _query_parameters(schemas, message, f"{name}.", bound, seen | {message.full_name})
        elif not nested:
            required = field_behavior_pb2.REQUIRED in _behaviors(field)
            parameters.append({"name": name, "in": "query", "required": required, "schema": schemas.field(field)})
    return parameters


def _operation(route: RestRoute, schemas: _Schemas) -> JsonObject:
    request = route.method.input_type
    path_fields = {variable.field_path for variable in route.template.variables}
    parameters = [
        {
            "name": variable.field_path,
            "in": "path",
            "required": True,
            "schema": schemas.single(field_at(request, variable.field_path)),
        }
        for variable in route.template.variables
    ]
    rpc = f"{route.method.containing_service.full_name}.{route.method.name}"
    comment = proto_comments().get(route.method.full_name, "")
    operation: JsonObject = {
        "operationId": route.operation_id,
        "tags": [route.method.containing_service.name],
        # The comment's first sentence, else the RPC's name.
        "summary": comment.replace("\n", " ").split(". ")[0].rstrip(".") if comment else rpc,
        "description": f"{comment}\n\ngRPC: `{rpc}`" if comment else f"gRPC: `{rpc}`",
    }
    if route.keyless:
        operation["security"] = []
    if route.body:
        body_schema = schemas.message(request) if route.body == "*" else schemas.field(field_at(request, route.body))
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    else:
        parameters += _query_parameters(schemas, request, "", path_fields, frozenset({request.full_name}))
    document = route.server_streaming and route.method.output_type.full_name == HTTP_BODY
    if route.server_streaming and not document:
        parameters.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 2},
                "description": "Resume after this `seq` (SSE reconnects send it); 204 when it is at or past the end.",
            }
        )
    if parameters:
        operation["parameters"] = parameters

    response = route.method.output_type
    if route.response_body:
        response_schema = schemas.field(field_at(response, route.response_body))
    else:
        response_schema = schemas.message(response)
    media_types = [SSE_MEDIA_TYPE, NDJSON_MEDIA_TYPE] if route.server_streaming else ["application/json"]
    content = {media_type: {"schema": response_schema} for media_type in media_types}
    if document:
        # A stream of google.api.HttpBody is one document of the first chunk's type; the exports are a JSON
        # array of jobs or a CSV file.
        content = {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        }
    if response.full_name == HTTP_BODY and not route.server_streaming:
        # The body is the file itself (gateway/rest.py), of whatever type the call answers.
        content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    errors = [400, 401, 403, 404, 409, *([413] if route.body else []), 429, 503, 504]
    operation["responses"] = {
        str(route.success_status): {
            "description": "a document, streamed"
            if document
            else "a stream of events, one per message"
            if route.server_streaming
            else "success",
            "content": content,
        },
        **(
            {"204": {"description": "Last-Event-ID is at or past the stream's end"}}
            if route.server_streaming and not document
            else {}
        ),
        **_status_responses(errors),
        "default": {"description": "error", "content": {"application/json": {"schema": _ref(ERROR_SCHEMA)}}},
    }
    return operation


def build_openapi(table: RouteTable) -> JsonObject:
    schemas = _Schemas()
    paths: JsonObject = {}
    for route in table.routes:
        paths.setdefault(route.template.openapi_path(), {})[route.http_method.lower()] = _operation(route, schemas)
    for path, operations in extra_paths().items():
        paths.setdefault(path, {}).update(operations)
    schemas.components.update(extra_schemas())
    return {
        "openapi": "3.0.3",
        "info": {"title": "AITBC gateway", "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
    }


# Swagger UI is vendored in the web app's static files (npm swagger-ui-dist, pinned): /docs works offline.
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>AITBC gateway</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui-dist-5.35.0/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def openapi_routes(table: RouteTable) -> list[Route]:
    document = build_openapi(table)

    async def openapi(request: Request) -> JSONResponse:
        # Under /api the same document must point "Try it out" at /api.
        return JSONResponse({**document, "servers": [{"url": request.scope.get("root_path") or "/"}]})

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    return [Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])]
