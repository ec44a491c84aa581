"""Fuzzing every route of the gateway's OpenAPI document: no input makes it fail (5xx), and it stays healthy.

Hypothesis draws requests from `/openapi.json` itself: an operation, its
path and query parameters, a body (JSON shaped by the operation's schema,
any JSON, or raw bytes), with the client key, a malformed key or none.
Strings include lone surrogates, numbers run past 64 bits, and any value
may turn into one of another type. Every answer must be below 500 (except
the documented 503s) and, when an error, be JSON in the route's error shape.

Runs are derandomized (the same examples every time, for CI) and bounded
to a few seconds. Hypothesis drives a synchronous client in a worker
thread while this test's event loop serves the real coordinator and
gateway.

Only the client key is used: with a miner key a fuzzed registration would
create a polling miner, and an OpenAI request for its model would then
wait for a completion that never comes. Miner routes still parse every
fuzzed body before the coordinator refuses the client key.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.openai_api import CHAT, COMPLETIONS
from tests.conftest import Keys

JsonObject = dict[str, Any]

# Per operation: 17 operations, 255 requests in all, in about 10 s.
EXAMPLES_PER_OPERATION: Final = 15
REQUEST_TIMEOUT: Final = 10.0
# 503s the API documents: no miner could run the job, the coordinator is draining, its store is failing.
# NOT_CONFIGURED: seed 004's route on a gateway without --wei-per-credit, as here.
DOCUMENTED_503: Final = frozenset({"NO_ELIGIBLE_MINER", "SHUTTING_DOWN", "STORE_UNAVAILABLE", "NOT_CONFIGURED"})
OPENAI_PATHS: Final = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/models", "/v1/models/{model_id}"})
# Seed 004's route answers errors in its own shape, {"ok": false, "error", "error_code"}.
SEED_PATHS: Final = frozenset({"/jobs/submit"})
# OpenAI's schema in the document names only `model`; these are the parameters worth aiming at.
OPENAI_NAMES: Final = sorted(CHAT.parameters | COMPLETIONS.parameters | {"n", "logprobs", "tools", "suffix"})
# Models of the test catalog, which no miner serves here: a valid request is a documented 503.
MODELS: Final = ["tiny", "m", "llama3.2"]

# Any code point, lone surrogates included (json.dumps escapes them as \ud800).
TEXT: Final = st.text(st.characters(exclude_categories=()), max_size=12)
SCALARS: Final = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXT
ANY_JSON: Final = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8
)
# Header values h11 lets a client send: visible ASCII and the bytes above it, no spaces or controls.
HEADER_VALUE: Final = st.binary(min_size=1, max_size=24).map(
    lambda raw: bytes(byte if 0x21 <= byte <= 0x7E or byte >= 0x80 else 0x41 for byte in raw)
)
_MESSAGE: Final = st.fixed_dictionaries(
    {},
    optional={"role": st.sampled_from(["user", "system", "assistant", "developer"]) | TEXT, "content": TEXT | ANY_JSON},
)
OPENAI_BODY: Final = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS) | ANY_JSON},
    optional={
        "prompt": TEXT | ANY_JSON,
        "messages": st.lists(_MESSAGE, max_size=3) | ANY_JSON,
        "max_tokens": st.integers(-2, 10) | ANY_JSON,
        "stream": st.booleans() | ANY_JSON,
        "stream_options": st.fixed_dictionaries({"include_usage": ANY_JSON}) | ANY_JSON,
        "stop": TEXT | st.lists(TEXT, max_size=2) | ANY_JSON,
        "n": st.integers(0, 2) | ANY_JSON,
    },
) | st.dictionaries(st.sampled_from(OPENAI_NAMES) | TEXT, ANY_JSON, max_size=5)


def _resolve(document: JsonObject, schema: JsonObject) -> JsonObject:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def from_schema(document: JsonObject, schema: JsonObject, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like `schema`, often enough valid to get past the first check, and sometimes any JSON."""
    schema = _resolve(document, schema)
    kind = schema.get("type")
    typed: st.SearchStrategy[Any]
    if "enum" in schema:
        typed = st.sampled_from(schema["enum"])
    elif kind == "object" and "properties" in schema and depth < 4:
        optional = {name: from_schema(document, field, depth + 1) for name, field in schema["properties"].items()}
        typed = st.fixed_dictionaries({}, optional=optional)
    elif kind == "array" and depth < 4:
        typed = st.lists(from_schema(document, schema.get("items", {}), depth + 1), max_size=3)
    elif kind == "string":
        # A model the catalog knows, now and then, so that some requests are valid.
        typed = TEXT | st.sampled_from(MODELS)
    elif kind == "integer":
        typed = st.integers(-(2**70), 2**70)
    elif kind == "number":
        typed = st.floats()
    elif kind == "boolean":
        typed = st.booleans()
    else:
        return ANY_JSON
    return st.one_of(typed, typed, typed, ANY_JSON)


def body_strategy(document: JsonObject, path: str, operation: JsonObject) -> st.SearchStrategy[bytes | None]:
    raw = st.binary(max_size=64)
    if "requestBody" not in operation:
        # A body where none is expected is ignored, never read.
        return st.none() | raw
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    shaped = from_schema(document, schema)
    if path in OPENAI_PATHS:
        shaped = OPENAI_BODY
    return st.one_of(
        shaped.map(lambda value: json.dumps(value).encode()), ANY_JSON.map(json.dumps).map(str.encode), raw
    )


def error_shape_is_right(path: str, response: httpx.Response) -> bool:
    body = response.json()
    if path.removeprefix("/api") in OPENAI_PATHS:
        error = body["error"]
        return isinstance(error["message"], str) and isinstance(error["code"], str) and "type" in error
    if path.removeprefix("/api") in SEED_PATHS:
        return body["ok"] is False and isinstance(body["error"], str) and isinstance(body["error_code"], str)
    return isinstance(body["detail"], str) and isinstance(body["error_code"], str)


def error_code(path: str, response: httpx.Response) -> str:
    body = response.json()
    code = body["error"]["code"] if path.removeprefix("/api") in OPENAI_PATHS else body["error_code"]
    return str(code).upper()


def fuzz_operation(base_url: str, document: JsonObject, method: str, template: str, client_key: str) -> None:
    """One bounded Hypothesis run against one operation of the document."""
    operation = document["paths"][template][method.lower()]
    body = body_strategy(document, template, operation)
    # Mostly the valid key, so that most requests get past it to their bodies.
    key_kinds = st.sampled_from(["valid"] * 4 + ["none", "wrong", "random"])
    known_keys = {"valid": client_key.encode(), "none": None, "wrong": b"aitbc_client_not_a_key"}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        path = template
        query: dict[str, str] = {}
        headers: dict[bytes, bytes] = {}
        for parameter in operation.get("parameters", []):
            name = parameter["name"]
            if parameter["in"] == "path":
                path = path.replace("{" + name + "}", quote(data.draw(TEXT, label=name), safe=""))
            elif parameter["in"] == "query" and data.draw(st.booleans(), label=f"with {name}"):
                query[name] = data.draw(TEXT, label=name).encode("utf-8", "replace").decode()
            elif parameter["in"] == "header" and data.draw(st.booleans(), label=f"with {name}"):
                headers[name.encode()] = data.draw(HEADER_VALUE, label=name)
        path = data.draw(st.sampled_from(["", "/api"]), label="prefix") + path
        kind = data.draw(key_kinds, label="key")
        key = data.draw(HEADER_VALUE, label="random key") if kind == "random" else known_keys[kind]
        if key is not None:
            headers[b"X-Api-Key"] = key
        if data.draw(st.booleans(), label="sse"):
            headers[b"Accept"] = b"text/event-stream"
        content = data.draw(body, label="body")

        with (
            httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client,
            # Streamed, and only an error's body read: the account's watch answers 200 and never ends.
            client.stream(method, path, params=query, headers=headers, content=content) as response,
        ):
            body_text = response.read().decode(errors="replace") if response.status_code >= 400 else ""
        described = f"{method} {path} -> {response.status_code} {body_text[:300]}"
        if response.status_code >= 500:
            assert response.status_code == 503, described
            assert error_code(template, response) in DOCUMENTED_503, described
        if response.status_code >= 400:
            assert error_shape_is_right(template, response), described

    one_request()


def fuzz_gateway(base_url: str, document: JsonObject, client_key: str) -> None:
    for template, methods in sorted(document["paths"].items()):
        for method in sorted(methods):
            fuzz_operation(base_url, document, method.upper(), template, client_key)


async def test_no_request_from_the_openapi_document_is_a_5xx(gateway: str, keys: Keys) -> None:
    base_url = f"http://{gateway}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        document = (await client.get("/openapi.json")).json()
        await asyncio.to_thread(fuzz_gateway, base_url, document, keys.client)
        health = await client.get("/health")
        jobs = await client.get("/v1/jobs", headers={"X-Api-Key": keys.client})
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert jobs.status_code == 200
