"""OpenAI-compatible `POST /v1/completions` and `POST /v1/chat/completions`: each request is one job.

A request is a SubmitJob (`raw` prompt for completions, `messages` for chat)
followed by a WatchJob until the final state. The HTTP request *is* the job
here, so a client that disconnects before the end cancels it and frees the
miner. `GET /v1/models` is openai_models.py.

Errors on these routes use OpenAI's body, `{"error": {"message", "type",
"param", "code"}}`; a job that fails mid-stream ends the stream with such an
error chunk and `data: [DONE]`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aitbc.client._status import without_advice
from aitbc.v1 import jobs_pb2
from gateway.errors import GatewayError, invalid_argument
from gateway.jobs import JobClient, final_state
from gateway.limits import read_body
from gateway.rpc import MessageStream, require_api_key
from gateway.streaming import (
    SSE_KEEPALIVE,
    SSE_MEDIA_TYPE,
    Disconnected,
    EventStreamResponse,
    encode_json,
    run_until_disconnect,
    sse_event,
    with_keepalive,
)
from gateway.transcoding import decode_json_body, message_from_json

JsonObject = dict[str, Any]

# Parameters a job honours.
_HONOURED: Final = frozenset({"model", "max_tokens", "temperature", "top_p", "stop", "stream", "stream_options"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_top_k(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= -1


def _is_metadata(value: object) -> bool:
    # OpenAI's bounds: 16 pairs, keys of 64 characters, values of 512.
    return (
        isinstance(value, dict)
        and len(value) <= 16
        and all(len(key) <= 64 and isinstance(item, str) and len(item) <= 512 for key, item in value.items())
    )


# Parameters commonly sent that do not change what the answer means, accepted (when well-formed) and
# ignored: a job has no seed (its output is not reproducible), no top-k sampling, no tools to call in
# parallel; metadata and user are not stored. Each with what a well-formed value is.
_IGNORED: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    "seed": (_is_int, "an integer"),
    "top_k": (_is_top_k, "an integer >= -1 (-1 or 0: off)"),
    "parallel_tool_calls": (lambda value: isinstance(value, bool), "a boolean"),
    "metadata": (_is_metadata, "an object of at most 16 strings (keys <= 64, values <= 512 characters)"),
    "user": (lambda value: isinstance(value, str) and len(value) <= 256, "a string of at most 256 characters"),
}
# Parameters a job cannot honour, accepted only with these values (or null),
# which mean what a job does anyway; other values would change the answer's meaning.
_DEFAULT_ONLY: Final[dict[str, tuple[object, ...]]] = {
    "n": (1,),
    "best_of": (1,),
    "echo": (False,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "suffix": ("",),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logit_bias": ({},),
    "tools": ([],),
    "tool_choice": ("none",),
    "functions": ([],),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "store": (False,),
}


@dataclass(frozen=True, slots=True)
class OpenAIRequest:
    submit: jobs_pb2.SubmitJobRequest
    stream: bool
    include_usage: bool


def _stop_strings(stop: object) -> object:
    return [stop] if isinstance(stop, str) else stop


def _raw_prompt(body: JsonObject) -> JsonObject:
    """Completions continue the prompt as plain text, without a chat template."""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise invalid_argument("prompt: one string per request is supported", "prompt")
        prompt = prompt[0]
    return {"prompt": prompt, "raw": True}


def _message_text(content: object, index: int) -> object:
    """A message's content: a string, or text parts joined."""
    if not isinstance(content, list):
        return content
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise invalid_argument(f"messages[{index}].content: only text parts are supported", "messages")
        texts.append(part.get("text"))
    return "".join(text for text in texts if isinstance(text, str))


def _messages(body: JsonObject) -> JsonObject:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_argument("messages must be a non-empty list", "messages")
    converted = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_argument(f"messages[{index}] must be an object", "messages")
        # OpenAI's newer name for the system role.
        role = "system" if message.get("role") == "developer" else message.get("role")
        converted.append({"role": role, "content": _message_text(message.get("content"), index)})
    return {"messages": converted}


def _chat_delta(text: str | None, finish: str | None) -> JsonObject:
    if finish is not None:
        delta: JsonObject = {}
    elif text is None:
        delta = {"role": "assistant", "content": ""}
    else:
        delta = {"content": text}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two endpoints."""

    parameters: frozenset[str]
    # The request's input as SubmitJob fields.
    job_input: Callable[[JsonObject], JsonObject]
    object: str
    chunk_object: str
    id_prefix: str
    # (text, finish_reason) -> a choice of the whole response.
    choice: Callable[[str, str], JsonObject]
    # (text, finish_reason) -> a choice of a chunk; text None for the chunk that opens a stream.
    chunk_choice: Callable[[str | None, str | None], JsonObject]
    # Whether a stream opens with a chunk of its own (chat's announces the assistant role).
    opening_chunk: bool


COMPLETIONS: Final = Dialect(
    parameters=_HONOURED | {"prompt"},
    job_input=_raw_prompt,
    object="text_completion",
    chunk_object="text_completion",
    id_prefix="cmpl-",
    choice=lambda text, finish: {"index": 0, "text": text, "logprobs": None, "finish_reason": finish},
    chunk_choice=lambda text, finish: {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish},
    opening_chunk=False,
)

CHAT: Final = Dialect(
    parameters=_HONOURED | {"messages", "max_completion_tokens"},
    job_input=_messages,
    object="chat.completion",
    chunk_object="chat.completion.chunk",
    id_prefix="chatcmpl-",
    choice=lambda text, finish: {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "logprobs": None,
        "finish_reason": finish,
    },
    chunk_choice=_chat_delta,
    opening_chunk=True,
)


def openai_error_body(error: GatewayError) -> JsonObject:
    if error.status == HTTPStatus.UNAUTHORIZED:
        kind = "authentication_error"
    elif error.status == HTTPStatus.FORBIDDEN:
        kind = "permission_error"
    elif error.status == HTTPStatus.TOO_MANY_REQUESTS:
        kind = "rate_limit_error"
    elif error.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    # SubmitJob's `params.max_tokens` is the OpenAI request's `max_tokens`, and so on.
    param = error.field.removeprefix("params.") if error.field else None
    # The advice names SubmitJob fields (queue_if_unavailable) that an OpenAI request cannot carry.
    message = without_advice(error.detail, error.advice)
    return {"error": {"message": message, "type": kind, "param": param, "code": error.error_code.lower()}}


def openai_error(error: GatewayError) -> JSONResponse:
    return JSONResponse(openai_error_body(error), status_code=error.status, headers=error.headers())


def _unsupported(name: str, value: object) -> GatewayError:
    allowed = " or ".join(encode_json(choice) for choice in _DEFAULT_ONLY.get(name, ()))
    detail = f"{name}={encode_json(value)} is not supported" + (f"; only {allowed}" if allowed else "")
    return GatewayError(HTTPStatus.BAD_REQUEST, "UNSUPPORTED_PARAMETER", detail, field=name)


def _check_parameters(body: JsonObject, supported: frozenset[str]) -> None:
    for name, value in body.items():
        if name in supported or value is None:
            continue
        if name in _IGNORED:
            well_formed, expected = _IGNORED[name]
            if not well_formed(value):
                raise invalid_argument(f"{name} must be {expected}", name)
        elif value not in _DEFAULT_ONLY.get(name, ()):
            raise _unsupported(name, value)


def parse_request(body: object, dialect: Dialect, *, queue: bool = False) -> OpenAIRequest:
    """The job an OpenAI request asks for; with `queue`, one that waits for a miner rather than fail at once."""
    if not isinstance(body, dict):
        raise invalid_argument("the request body must be a JSON object")
    _check_parameters(body, dialect.parameters)
    if not isinstance(body.get("model"), str):
        raise invalid_argument("model is required", "model")
    stream = body.get("stream") is True
    stream_options = body.get("stream_options") or {}
    params = {
        # Chat's newer name wins; completions do not accept it at all.
        "max_tokens": body.get("max_completion_tokens", body.get("max_tokens")),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "stop": _stop_strings(body.get("stop")),
        "stream": stream,
    }
    submit = {
        "queue_if_unavailable": queue,
        "model": body["model"],
        "params": {key: value for key, value in params.items() if value is not None},
        **dialect.job_input(body),
    }
    return OpenAIRequest(
        submit=message_from_json(submit, jobs_pb2.SubmitJobRequest),
        stream=stream,
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
    )


def _usage(usage: jobs_pb2.Usage) -> JsonObject:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def _job_ended_early(change: jobs_pb2.JobStateChange) -> GatewayError:
    if change.status == jobs_pb2.JOB_STATE_CANCELED:
        return GatewayError(HTTPStatus.CONFLICT, "JOB_CANCELED", change.error or "the job was canceled")
    return GatewayError(HTTPStatus.INTERNAL_SERVER_ERROR, "JOB_FAILED", change.error or "the job failed")


async def generated(events: MessageStream[jobs_pb2.WatchJobResponse]) -> AsyncIterator[str | jobs_pb2.JobStateChange]:
    """The job's text as it is generated, then its completing state change; GatewayError if it does not complete."""
    async for event in events:
        if event.WhichOneof("event") == "tokens":
            yield event.tokens.text
        elif (state := final_state(event)) is not None:
            if state != jobs_pb2.JOB_STATE_COMPLETED:
                raise _job_ended_early(event.state_change)
            yield event.state_change
            return
    raise GatewayError(HTTPStatus.BAD_GATEWAY, "STREAM_ENDED", "the job's events ended before it finished")


class OpenAIRoutes:
    def __init__(self, jobs: JobClient, max_body_bytes: int, *, keepalive_seconds: float, queue: bool) -> None:
        self._jobs = jobs
        self._max_body_bytes = max_body_bytes
        self._keepalive_seconds = keepalive_seconds
        self._queue = queue

    def routes(self) -> list[Route]:
        return [
            Route("/v1/completions", self._endpoint(COMPLETIONS), methods=["POST"]),
            Route("/v1/chat/completions", self._endpoint(CHAT), methods=["POST"]),
        ]

    def _endpoint(self, dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await self._complete(request, dialect)
            except GatewayError as error:
                return openai_error(error)

        return endpoint

    async def _complete(self, request: Request, dialect: Dialect) -> Response:
        api_key = require_api_key(request.headers)
        parsed = parse_request(
            decode_json_body(await read_body(request, self._max_body_bytes)), dialect, queue=self._queue
        )
        job = await self._jobs.submit(parsed.submit, api_key)

        async def cancel_job() -> None:
            # The job may have finished meanwhile; then there is nothing to free.
            with contextlib.suppress(GatewayError):
                await self._jobs.cancel(job.job_id, api_key)

        try:
            events = await self._jobs.watch(job.job_id, api_key)
        except GatewayError:
            await cancel_job()
            raise
        envelope = {
            "id": dialect.id_prefix + job.job_id,
            "object": dialect.object,
            "created": job.created_at.seconds,
            "model": job.model,
        }
        if parsed.stream:
            chunks = with_keepalive(
                _chunks(dialect, {**envelope, "object": dialect.chunk_object}, events, parsed.include_usage),
                self._keepalive_seconds,
                SSE_KEEPALIVE,
            )
            return EventStreamResponse(chunks, media_type=SSE_MEDIA_TYPE, on_disconnect=cancel_job)
        outcome = await run_until_disconnect(request.receive, _collect(events))
        if isinstance(outcome, Disconnected):
            await cancel_job()
            return Response(status_code=499)
        text, done = outcome
        finish = done.finish_reason or "stop"
        return JSONResponse({**envelope, "choices": [dialect.choice(text, finish)], "usage": _usage(done.usage)})


async def _collect(events: MessageStream[jobs_pb2.WatchJobResponse]) -> tuple[str, jobs_pb2.JobStateChange]:
    texts: list[str] = []
    done = None
    async for item in generated(events):
        if isinstance(item, str):
            texts.append(item)
        else:
            done = item
    assert done is not None, "generated() ends with the completing state change or raises"
    return "".join(texts), done


async def _chunks(
    dialect: Dialect, envelope: JsonObject, events: MessageStream[jobs_pb2.WatchJobResponse], include_usage: bool
) -> AsyncIterator[str]:
    if include_usage:
        # OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
        envelope = {**envelope, "usage": None}

    def chunk(*choices: JsonObject, **extra: Any) -> str:
        return sse_event(encode_json({**envelope, "choices": list(choices), **extra}))

    if dialect.opening_chunk:
        yield chunk(dialect.chunk_choice(None, None))
    try:
        async for item in generated(events):
            if isinstance(item, str):
                yield chunk(dialect.chunk_choice(item, None))
            else:
                yield chunk(dialect.chunk_choice("", item.finish_reason or "stop"))
                if include_usage:
                    yield chunk(usage=_usage(item.usage))
    except GatewayError as error:
        yield sse_event(encode_json(openai_error_body(error)))
    yield sse_event("[DONE]")
