"""Errors as HTTP responses: `{"detail": ..., "error_code": ...}` with the standard gRPC→HTTP status.

Every failure the gateway reports, whether the coordinator's rich status or
the gateway's own (bad JSON, unknown route), becomes a `GatewayError` first;
each surface (REST, SSE, WebSocket, OpenAI) renders that one type.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import grpc
import grpc.aio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# The SDK's decoder and status table, so that the gateway and the SDK read a rich status alike.
from aitbc.client._status import HTTP_STATUS, status_details

# One table with the SDK, which reads the statuses back into codes (`aitbc.client._status`).
HTTP_STATUS_FOR_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode[code.name]: status for code, status in HTTP_STATUS.items()
}

# Reasons whose HTTP status is more precise than their gRPC code's: FAILED_PRECONDITION is a 409 state
# conflict in general, but a job the account cannot pay for is HTTP's 402 Payment Required.
HTTP_STATUS_FOR_REASON: dict[str, int] = {
    "INSUFFICIENT_FUNDS": 402,
    # NOT_FOUND over gRPC, but gone for good rather than never there: HTTP's 410 (docs/results.md).
    "RESULT_DELETED": 410,
    "SHARE_LINK_EXPIRED": 410,
    "SHARE_LINK_REVOKED": 410,
}

# Seconds a client is asked to wait after a 429 whose status carries no RetryInfo.
DEFAULT_RETRY_AFTER = 1


class GatewayError(Exception):
    """A failure as an HTTP client sees it: status, machine-readable code, message, the field at fault."""

    def __init__(
        self,
        status: int,
        error_code: str,
        detail: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.field = field
        # The advice `detail` ends with, in API terms; surfaces without those fields (OpenAI) drop it.
        self.advice = advice
        if retry_after is None and status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = DEFAULT_RETRY_AFTER
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "error_code": self.error_code}
        if self.field:
            body["field"] = self.field
        if self.advice:
            # Already the end of `detail`; apart as well, so that a client (the SDK) can word it its own way.
            body["advice"] = self.advice
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers())


def invalid_argument(detail: str, field: str | None = None) -> GatewayError:
    return GatewayError(HTTPStatus.BAD_REQUEST, "INVALID_ARGUMENT", detail, field=field)


def unauthenticated(detail: str) -> GatewayError:
    """The gateway's own 401, for a key it can tell is missing or malformed without asking the coordinator."""
    return GatewayError(HTTPStatus.UNAUTHORIZED, "UNAUTHENTICATED", detail)


def payload_too_large(limit: int, what: str = "request body") -> GatewayError:
    return GatewayError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", f"{what} too large (limit {limit} bytes)"
    )


def from_rpc_error(error: grpc.aio.AioRpcError) -> GatewayError:
    """The coordinator's status; error_code is its ErrorInfo reason, else the gRPC code's name."""
    code = error.code()
    details = status_details(error)
    # Retry-After takes whole seconds; rounding up never asks a client to come back too early.
    retry_after = None if details.retry_delay is None else max(1, math.ceil(details.retry_delay))
    status = HTTP_STATUS_FOR_REASON.get(details.reason or "") or HTTP_STATUS_FOR_CODE.get(
        code, HTTPStatus.INTERNAL_SERVER_ERROR
    )
    return GatewayError(
        status,
        details.reason or code.name,
        error.details() or code.name,
        field=details.field,
        retry_after=retry_after,
        advice=details.advice,
    )


def from_http_exception(exc: HTTPException) -> GatewayError:
    """Starlette's own 404 (no route) and 405 (no such method on the route)."""
    phrase = HTTPStatus(exc.status_code)
    return GatewayError(exc.status_code, phrase.name, exc.detail or phrase.phrase)


async def render_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response()


async def render_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = from_http_exception(exc).response()
    response.headers.update(exc.headers or {})
    return response
