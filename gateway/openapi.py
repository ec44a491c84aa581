"""`/openapi.json` and `/docs`: an OpenAPI 3 document derived from the route table and descriptors.

Schemas follow the JSON the gateway speaks (see transcoding.py): proto field
names, enum values in lower case without their prefix, 64-bit integers as
numbers. `google.api.field_behavior` marks fields `required` (REQUIRED) or
`readOnly` (OUTPUT_ONLY).
"""

from __future__ import annotations

from typing import Any, Final

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from aitbc import __version__
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

# Routes the gateway adds by hand (not from annotations), described loosely.
_EXTRA_PATHS: Final[JsonObject] = {
    "/health": {
        "get": {
            "operationId": "Gateway_Health",
            "tags": ["Gateway"],
            "summary": "Gateway up, and the coordinator's grpc.health.v1 status (503 when not serving).",
            "security": [],
            "responses": {"200": {"description": "serving"}, "503": {"description": "coordinator not serving"}},
        }
    },
    **{
        path: {
            "post": {
                "operationId": operation_id,
                "tags": ["OpenAI"],
                "summary": f"OpenAI-compatible {what}; one job per request.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object", "required": ["model"]}}},
                },
                "responses": {
                    "200": {
                        "description": f"the {what}, or with `stream: true` its chunks as SSE",
                        "content": {"application/json": {"schema": {"type": "object"}}, SSE_MEDIA_TYPE: {}},
                    }
                },
            }
        }
        for path, operation_id, what in (
            ("/v1/completions", "OpenAI_CreateCompletion", "completion"),
            ("/v1/chat/completions", "OpenAI_CreateChatCompletion", "chat completion"),
        )
    },
}


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


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
            schema: JsonObject = {"type": "object", "properties": {}}
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
            self.components[descriptor.full_name] = {"type": "string", "enum": values}
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
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        if field_behavior_pb2.OUTPUT_ONLY in _behaviors(field):
            # Siblings of a $ref are ignored in OpenAPI 3.0; allOf carries the flag.
            schema = {"allOf": [schema], "readOnly": True} if "$ref" in schema else {**schema, "readOnly": True}
        return schema


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
    operation: JsonObject = {
        "operationId": route.operation_id,
        "tags": [route.method.containing_service.name],
        "summary": f"{route.method.containing_service.full_name}.{route.method.name}",
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
                "schema": {"type": "integer"},
                "description": "Resume after this `seq` (SSE reconnects send it).",
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
    if document:
        # A stream of google.api.HttpBody is one document of the first chunk's type; the exports are JSON or CSV.
        response_schema = {"type": "string", "format": "binary"}
        media_types = ["application/json", "text/csv"]
    content = {media_type: {"schema": response_schema} for media_type in media_types}
    if response.full_name == HTTP_BODY and not route.server_streaming:
        # The body is the file itself (gateway/rest.py), of whatever type the call answers.
        content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    operation["responses"] = {
        str(route.success_status): {
            "description": "a document, streamed"
            if document
            else "a stream of events, one per message"
            if route.server_streaming
            else "success",
            "content": content,
        },
        "default": {"description": "error", "content": {"application/json": {"schema": _ref(ERROR_SCHEMA)}}},
    }
    return operation


def build_openapi(table: RouteTable) -> JsonObject:
    schemas = _Schemas()
    paths: JsonObject = {}
    for route in table.routes:
        paths.setdefault(route.template.openapi_path(), {})[route.http_method.lower()] = _operation(route, schemas)
    for path, operations in _EXTRA_PATHS.items():
        paths.setdefault(path, {}).update(operations)
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


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>AITBC gateway</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui"});</script>
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
