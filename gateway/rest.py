"""The annotated RPCs as one Starlette route: match by the route table, transcode, call, answer."""

from __future__ import annotations

from typing import Any

from google.api import httpbody_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from gateway.limits import read_body
from gateway.routes import MethodNotAllowed, RouteMatch, RouteTable
from gateway.rpc import CoordinatorClient, require_api_key, timeout_from_headers
from gateway.streaming import (
    HTTP_BODY,
    NDJSON_KEEPALIVE,
    NDJSON_MEDIA_TYPE,
    SSE_KEEPALIVE,
    SSE_MEDIA_TYPE,
    EventStreamResponse,
    encode_stream,
    http_body_response,
    resume_query,
    resumes,
    wants_sse,
    with_keepalive,
)
from gateway.transcoding import request_from_http, response_to_json, take_spelling

_MATCH_KEY = "gateway.route_match"


def matched_template(scope: Scope) -> str | None:
    """The path template of the annotated route that served `scope`, if one did (for metrics and logs)."""
    found = scope.get(_MATCH_KEY)
    return found.route.template.text if isinstance(found, RouteMatch) else None


def _route_path(scope: Scope) -> str:
    """The path below the mount point (`/api` serves the same routes as `/`)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    return path[len(root_path) :] if root_path and path.startswith(root_path + "/") else path


class AnnotatedRoutes(BaseRoute):
    def __init__(
        self, table: RouteTable, coordinator: CoordinatorClient, max_body_bytes: int, keepalive_seconds: float
    ) -> None:
        self.table = table
        self._coordinator = coordinator
        self._max_body_bytes = max_body_bytes
        self._keepalive_seconds = keepalive_seconds

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        found = self.table.match(scope["method"], _route_path(scope))
        if found is None:
            return Match.NONE, {}
        if isinstance(found, MethodNotAllowed):
            # PARTIAL lets a route declared later still match fully; failing that, 405.
            return Match.PARTIAL, {_MATCH_KEY: found}
        return Match.FULL, {_MATCH_KEY: found, "path_params": found.captures}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope[_MATCH_KEY]
        if isinstance(found, MethodNotAllowed):
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(found.allowed))})
        response = await self._respond(Request(scope, receive), found)
        await response(scope, receive, send)

    async def _respond(self, request: Request, found: RouteMatch) -> Response:
        route = found.route
        # A method needs a key unless it is keyless: without one, nothing else about the request matters.
        # A keyless route ignores a key sent anyway, so a bad or revoked key cannot fail a public read.
        api_key = None if route.keyless else require_api_key(request.headers)
        timeout = timeout_from_headers(request.headers)
        # A route without a body ignores one; it is not read (and uvicorn discards it).
        body = await read_body(request, self._max_body_bytes) if route.body else b""
        query, british = take_spelling(resume_query(route, request.headers, request.query_params.multi_items()))
        message = request_from_http(route, found.captures, query, body)
        response_type = GetMessageClass(route.method.output_type)

        def to_json(response: Message) -> Any:
            return response_to_json(route, response, british=british)

        if route.server_streaming:
            if route.method.output_type.full_name == HTTP_BODY:
                # A document (an export): its first chunk names its type, so the response waits for it.
                document = await self._coordinator.open_stream(route.method, message, response_type, api_key, timeout)
                return http_body_response(document)
            stream = await self._coordinator.open_stream(
                route.method, message, response_type, api_key, timeout, first_within=self._keepalive_seconds
            )
            if stream.empty and resumes(route, request.headers):
                # Resumed at or past the end: 204 is what makes an EventSource stop reconnecting.
                return Response(status_code=204)
            sse = wants_sse(request.headers)
            chunks = with_keepalive(
                encode_stream(stream, to_json, sse=sse),
                self._keepalive_seconds,
                SSE_KEEPALIVE if sse else NDJSON_KEEPALIVE,
            )
            return EventStreamResponse(chunks, media_type=SSE_MEDIA_TYPE if sse else NDJSON_MEDIA_TYPE)
        response, headers = await self._coordinator.unary_with_headers(
            route.method, message, response_type, api_key, timeout
        )
        if isinstance(response, httpbody_pb2.HttpBody):
            # google.api.HttpBody is the body itself, as grpc-gateway serves it: a file, not JSON.
            return Response(
                response.data, status_code=route.success_status, media_type=response.content_type, headers=headers
            )
        return JSONResponse(to_json(response), status_code=route.success_status)
