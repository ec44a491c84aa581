"""The OpenAPI description of the routes written by hand: /health, the OpenAI API and seed 004's routing.

The annotated routes are derived from descriptors (openapi.py); these are
described here, with the bounds their handlers enforce (openai_api.py,
openai_models.py, seed_routing.py) and their own error bodies.
"""

from __future__ import annotations

from typing import Any, Final

from aitbc.domain.jobs import MAX_PROMPT_CHARS, MAX_STOP_CHARS, MAX_STOP_SEQUENCES, MAX_TOKENS_LIMIT, MODEL_ID_PATTERN
from gateway.openapi_limits import SMALLEST_FLOAT32
from gateway.seed_routing import MAX_INPUT_CHARS, MAX_MODEL_ID_CHARS
from gateway.streaming import SSE_MEDIA_TYPE

JsonObject = dict[str, Any]


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JsonObject) -> JsonObject:
    return {**schema, "nullable": True}


def _only(*values: object) -> JsonObject:
    """A parameter a job cannot honour: accepted with its neutral value (or null) only."""
    return {"enum": [*values, None], "nullable": True}


_STOP_STRING: Final = {"type": "string", "minLength": 1, "maxLength": MAX_STOP_CHARS}
_SAMPLING: Final[JsonObject] = {
    "model": {"type": "string", "pattern": MODEL_ID_PATTERN, "description": "A model of `GET /v1/models`."},
    "max_tokens": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT}),
    "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
    "top_p": _nullable({"type": "number", "minimum": SMALLEST_FLOAT32, "maximum": 1}),
    "stop": _nullable(
        {"oneOf": [_STOP_STRING, {"type": "array", "items": _STOP_STRING, "maxItems": MAX_STOP_SEQUENCES}]}
    ),
    "stream": _nullable({"type": "boolean"}),
    "stream_options": _nullable(
        {
            "type": "object",
            "properties": {"include_usage": {"type": "boolean"}},
            "additionalProperties": False,
        }
    ),
    # Accepted and ignored (docs/gateway.md: honoured vs ignored).
    "seed": _nullable({"type": "integer", "description": "Accepted and ignored: a job has no seed."}),
    "top_k": _nullable({"type": "integer", "minimum": -1, "description": "Accepted and ignored."}),
    "parallel_tool_calls": _nullable({"type": "boolean", "description": "Accepted and ignored: no tools."}),
    "metadata": _nullable(
        {
            "type": "object",
            "maxProperties": 16,
            "additionalProperties": {"type": "string", "maxLength": 512},
            "description": "Accepted and ignored.",
        }
    ),
    "user": _nullable({"type": "string", "maxLength": 256, "description": "Accepted and ignored."}),
    # Refused unless neutral: they would change what the answer means.
    "n": _only(1),
    "best_of": _only(1),
    "echo": _only(False),
    "logprobs": _only(False),
    "top_logprobs": _only(0),
    "suffix": _only(""),
    "presence_penalty": _only(0),
    "frequency_penalty": _only(0),
    "logit_bias": _nullable({"type": "object", "maxProperties": 0}),
    "tools": _nullable({"type": "array", "maxItems": 0}),
    "functions": _nullable({"type": "array", "maxItems": 0}),
    "tool_choice": _only("none"),
    "response_format": _nullable(
        {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["text"]}},
            "required": ["type"],
            "additionalProperties": False,
        }
    ),
    "modalities": _nullable(
        {"type": "array", "items": {"type": "string", "enum": ["text"]}, "minItems": 1, "maxItems": 1}
    ),
    "store": _only(False),
}
# Non-blank: a job needs some text to continue.
_TEXT: Final = {"type": "string", "pattern": "\\S", "maxLength": MAX_PROMPT_CHARS}
_TEXT_PART: Final = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
    "required": ["type", "text"],
    "additionalProperties": False,
}
_CHAT_MESSAGE: Final = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {
            "oneOf": [{"type": "string", "maxLength": MAX_PROMPT_CHARS}, {"type": "array", "items": _TEXT_PART}]
        },
        "name": {"type": "string"},
    },
    "required": ["role", "content"],
    "additionalProperties": False,
}

_SCHEMAS: Final[JsonObject] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "example": "invalid_request_error"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True, "example": "unsupported_parameter"},
                },
            }
        },
    },
    "CompletionRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            **_SAMPLING,
            "prompt": {"oneOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": 1}]},
        },
        "additionalProperties": False,
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "description": "The last message must be a system or user turn with content.",
        "properties": {
            **_SAMPLING,
            "messages": {"type": "array", "items": _CHAT_MESSAGE, "minItems": 1},
            "max_completion_tokens": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT}),
        },
        "additionalProperties": False,
    },
    "OpenAIModel": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
        "description": "Also the catalog's fields (miners, free_slots, aliases, prices...), as in `GET /v1/catalog`.",
    },
    "SeedSubmitRequest": {
        "type": "object",
        "required": ["modelId", "input", "requesterAddress"],
        "properties": {
            "modelId": {"type": "string", "pattern": MODEL_ID_PATTERN, "maxLength": MAX_MODEL_ID_CHARS},
            "input": {"type": "string", "pattern": "\\S", "maxLength": MAX_INPUT_CHARS},
            "requesterAddress": {
                "type": "string",
                # A made-up mixed-case address fails its checksum; one case throughout is always valid.
                "pattern": "^0x([0-9a-f]{40}|[0-9A-F]{40})$",
                "description": "0x and 40 hex digits in one case; mixed case is accepted when EIP-55 checksummed.",
            },
        },
        "additionalProperties": False,
    },
    "SeedSubmitResponse": {
        "type": "object",
        "required": ["ok", "data"],
        "properties": {
            "ok": {"type": "boolean", "enum": [True]},
            "data": {
                "type": "object",
                "properties": {
                    "modelId": {"type": "string"},
                    "assignedNode": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                    "nodeReputation": {"type": "integer", "minimum": 0, "maximum": 100},
                    "estimatedCostWei": {"type": "string", "pattern": "^[0-9]+$"},
                    "estimatedCostEth": {"type": "string"},
                    "inputHash": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
                    "instructions": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    },
    "SeedError": {
        "type": "object",
        "required": ["ok", "error"],
        "properties": {
            "ok": {"type": "boolean", "enum": [False]},
            "error": {"type": "string"},
            "error_code": {"type": "string"},
            "field": {"type": "string"},
        },
    },
}


def _errors(schema: str, statuses: dict[int, str]) -> JsonObject:
    content = {"application/json": {"schema": _ref(schema)}}
    return {
        **{str(status): {"description": meaning, "content": content} for status, meaning in statuses.items()},
        "default": {"description": "error", "content": content},
    }


_OPENAI_ERRORS: Final = {
    400: "an invalid or unsupported parameter (`param` names it)",
    401: "no API key, or one the coordinator does not accept",
    402: "the account cannot pay for the job",
    404: "no such model",
    409: "the job was canceled",
    413: "the request body is over the gateway's limit",
    429: "too many requests or a full queue",
    500: "the job failed",
    503: "no online miner can run the model, or the coordinator is unavailable",
}


def _completion(operation_id: str, what: str, request: str) -> JsonObject:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["OpenAI"],
            "summary": f"OpenAI-compatible {what}; one job per request",
            "description": "Each parameter is honoured, ignored, or refused unless neutral (docs/gateway.md).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {
                "200": {
                    "description": f"the {what}, or with `stream: true` its chunks as SSE",
                    "content": {"application/json": {"schema": {"type": "object"}}, SSE_MEDIA_TYPE: {}},
                },
                **_errors("OpenAIError", _OPENAI_ERRORS),
            },
        }
    }


def extra_paths() -> JsonObject:
    model_errors = {status: _OPENAI_ERRORS[status] for status in (401, 404, 429, 503)}
    return {
        "/health": {
            "get": {
                "operationId": "Gateway_Health",
                "tags": ["Gateway"],
                "summary": "Gateway up, and the coordinator's grpc.health.v1 status (503 when not serving)",
                "security": [],
                "responses": {"200": {"description": "serving"}, "503": {"description": "coordinator not serving"}},
            }
        },
        "/v1/completions": _completion("OpenAI_CreateCompletion", "completion", "CompletionRequest"),
        "/v1/chat/completions": _completion("OpenAI_CreateChatCompletion", "chat completion", "ChatCompletionRequest"),
        "/v1/models": {
            "get": {
                "operationId": "OpenAI_ListModels",
                "tags": ["OpenAI"],
                "summary": "The models a request can run on now (an online miner serves it, or --openai-queue)",
                "responses": {
                    "200": {
                        "description": "OpenAI's model list",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["object", "data"],
                                    "properties": {
                                        "object": {"type": "string", "enum": ["list"]},
                                        "data": {"type": "array", "items": _ref("OpenAIModel")},
                                    },
                                }
                            }
                        },
                    },
                    **_errors("OpenAIError", model_errors),
                },
            }
        },
        "/v1/models/{model_id}": {
            "get": {
                "operationId": "OpenAI_RetrieveModel",
                "tags": ["OpenAI"],
                "summary": "One model of `GET /v1/models`, by id or alias",
                "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "the model",
                        "content": {"application/json": {"schema": _ref("OpenAIModel")}},
                    },
                    **_errors("OpenAIError", model_errors),
                },
            }
        },
        "/jobs/submit": {
            "post": {
                "operationId": "Seed004_SubmitJob",
                "tags": ["Seed 004"],
                "summary": "Route a job to the best node with a payout address, priced in wei (nothing is submitted)",
                "description": "Seed 004's routing API, at `/api/jobs/submit`. 503 when no eligible node is online "
                "or the gateway has no --wei-per-credit rate.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SeedSubmitRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "the route",
                        "content": {"application/json": {"schema": _ref("SeedSubmitResponse")}},
                    },
                    **_errors(
                        "SeedError",
                        {
                            400: "an invalid field (`field` names it)",
                            401: "no API key, or one the coordinator does not accept",
                            413: "the request body is over the gateway's limit",
                            503: "no eligible node is online, or no wei rate is configured",
                        },
                    ),
                },
            }
        },
    }


def extra_schemas() -> JsonObject:
    return dict(_SCHEMAS)
