"""The transports over the HTTP gateway (httpx): REST for unary calls, Server-Sent Events for streams.

Imported only for an `http://` or `https://` target, so that gRPC users never load httpx.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from google.api import httpbody_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from aitbc import config
from aitbc.client._rest import (
    END_EVENT,
    SSE_MEDIA_TYPE,
    RestCall,
    SseDecoder,
    error_from_http,
    parse_response,
    rest_call,
    stream_message,
    timeout_header,
)
from aitbc.client._status import StatusCode
from aitbc.client._transport import AsyncTransport, M, Transport
from aitbc.client.errors import AitbcApiError

# The gateway ends a stream at its deadline (Grpc-Timeout); reads wait this much longer before the
# client gives up on its own, for a gateway or proxy that does not.
DEADLINE_GRACE = 5.0


def _headers(api_key: str | None) -> dict[str, str]:
    return {config.API_KEY_METADATA: api_key} if api_key else {}


def _call_headers(timeout_s: float | None, *, streaming: bool = False) -> dict[str, str]:
    headers = timeout_header(timeout_s) if timeout_s is not None else {}
    return {"Accept": SSE_MEDIA_TYPE, **headers} if streaming else headers


def _stream_timeout(connect: float, timeout_s: float | None) -> httpx.Timeout:
    """Connect as for any call; read for as long as the stream may stay quiet (forever without a deadline)."""
    return httpx.Timeout(connect, read=None if timeout_s is None else timeout_s + DEADLINE_GRACE)


@contextmanager
def _translated(base_url: str) -> Iterator[None]:
    """httpx's failures as the gRPC transport reports the same ones."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise AitbcApiError(
            StatusCode.UNAVAILABLE, "UNAVAILABLE", f"no gateway answered at {base_url}: {error}"
        ) from error
    except httpx.TimeoutException as error:
        raise AitbcApiError(StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", f"deadline exceeded: {error}") from error
    except httpx.TransportError as error:
        # The connection broke (the gateway restarted, a proxy gave up): as over gRPC, UNAVAILABLE.
        raise AitbcApiError(StatusCode.UNAVAILABLE, "UNAVAILABLE", f"connection to {base_url} lost: {error}") from error


def _error(response: httpx.Response) -> AitbcApiError:
    return error_from_http(response.status_code, response.content, response.headers.get("retry-after"))


def _answer(call: RestCall, response: httpx.Response, response_type: type[M]) -> M:
    if response.status_code >= 400:
        raise _error(response)
    try:
        data: Any = response.json()
    except ValueError:
        detail = f"the gateway answered {response.status_code} without JSON: {response.text[:200]}"
        raise AitbcApiError(StatusCode.INTERNAL, "INTERNAL", detail) from None
    return parse_response(call, data, response_type)


HTTP_BODY = "google.api.HttpBody"


def _body(response: httpx.Response, data: bytes, response_type: type[M]) -> M:
    """A chunk of a `google.api.HttpBody` stream as the gRPC transport delivers it."""
    message = response_type()
    message.ParseFromString(
        httpbody_pb2.HttpBody(content_type=response.headers.get("content-type", ""), data=data).SerializeToString()
    )
    return message


class HttpTransport(Transport):
    """A blocking httpx client of the gateway at `base_url` (e.g. `https://HOST/api`)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    @property
    def target(self) -> str:
        return self._base_url

    def unary(self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None) -> M:
        call = rest_call(method, request)
        with _translated(self._base_url):
            response = self._client.request(
                call.verb,
                call.path,
                params=call.query,
                json=call.body,
                headers=_call_headers(timeout_s),
                timeout=timeout_s,
            )
        return _answer(call, response, response_type)

    def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> Generator[M, None, None]:
        call = rest_call(method, request)
        with (
            _translated(self._base_url),
            self._client.stream(
                call.verb,
                call.path,
                params=call.query,
                json=call.body,
                headers=_call_headers(timeout_s, streaming=True),
                timeout=_stream_timeout(self._timeout, timeout_s),
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            if method.output_type.full_name == HTTP_BODY:
                # A document (an export), not events: its bytes as they come.
                for data in response.iter_bytes():
                    yield _body(response, data, response_type)
                return
            decoder = SseDecoder()
            for line in response.iter_lines():
                if (event := decoder.feed(line)) is None:
                    continue
                if event[0] == END_EVENT:
                    # The stream ran its course; what follows is the connection closing.
                    return
                yield stream_message(*event, response_type)

    def close(self) -> None:
        self._client.close()


class AsyncHttpTransport(AsyncTransport):
    """An asyncio httpx client of the gateway at `base_url` (e.g. `https://HOST/api`)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    @property
    def target(self) -> str:
        return self._base_url

    async def unary(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> M:
        call = rest_call(method, request)
        with _translated(self._base_url):
            response = await self._client.request(
                call.verb,
                call.path,
                params=call.query,
                json=call.body,
                headers=_call_headers(timeout_s),
                timeout=timeout_s,
            )
        return _answer(call, response, response_type)

    async def stream(
        self, method: MethodDescriptor, request: Message, response_type: type[M], timeout_s: float | None
    ) -> AsyncGenerator[M, None]:
        call = rest_call(method, request)
        with _translated(self._base_url):
            async with self._client.stream(
                call.verb,
                call.path,
                params=call.query,
                json=call.body,
                headers=_call_headers(timeout_s, streaming=True),
                timeout=_stream_timeout(self._timeout, timeout_s),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(response)
                if method.output_type.full_name == HTTP_BODY:
                    async for data in response.aiter_bytes():
                        yield _body(response, data, response_type)
                    return
                decoder = SseDecoder()
                async for line in response.aiter_lines():
                    if (event := decoder.feed(line)) is None:
                        continue
                    if event[0] == END_EVENT:
                        # The stream ran its course; what follows is the connection closing.
                        return
                    yield stream_message(*event, response_type)

    async def close(self) -> None:
        await self._client.aclose()
