"""The bounds the coordinator enforces on request fields, as JSON Schema keywords for the OpenAPI document.

Each entry names a field by its full proto name and takes its numbers from
the constants the validators themselves use, so the document cannot drift
from what the server refuses. A limit of 0 where a field documents "0: the
default" is included in the range.
"""

from __future__ import annotations

from typing import Any, Final

from aitbc.coordinator.client_jobs import MAX_PAGE_SIZE
from aitbc.coordinator.explorer import MAX_LIMIT as MAX_EXPLORER_LIMIT
from aitbc.coordinator.miners import MAX_CONCURRENCY, MAX_MODELS, MAX_NAME_CHARS, PUBLIC_KEY_BYTES
from aitbc.coordinator.polling import MAX_OFFERS
from aitbc.coordinator.settlement import MAX_ACCOUNT_CHARS, MAX_CREDIT_ID_CHARS, MAX_RECEIPTS
from aitbc.domain.history import EXPORT_FORMATS, MAX_DAYS
from aitbc.domain.jobs import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_LIMIT,
    MODEL_ID_PATTERN,
)
from aitbc.domain.money import MAX_AMOUNT
from aitbc.domain.retention import Plan
from aitbc.domain.webhooks import JOB_EVENTS, MAX_URL_CHARS

JsonObject = dict[str, Any]

_INT64_MAX: Final = 2**63 - 1
# top_p must be above 0 once stored as a float32: this rounds to the smallest positive one.
SMALLEST_FLOAT32: Final = 1.5e-45
# Some character that is not white space: the server refuses a blank prompt.
_NON_BLANK: Final = "\\S"
_ETH_ADDRESS: Final[JsonObject] = {"pattern": "^(0x[0-9a-fA-F]{40})?$", "maxLength": 42}
# A sequence number to resume from: 0 (the start) up.
_SEQUENCE: Final[JsonObject] = {"minimum": 0, "maximum": _INT64_MAX}
# The base64 of an Ed25519 public key: empty, or 32 bytes.
_PUBLIC_KEY: Final[JsonObject] = {"maxLength": 4 * ((PUBLIC_KEY_BYTES + 2) // 3)}


# Empty: the coordinator's default model.
_OPTIONAL_MODEL_ID: Final[JsonObject] = {"pattern": f"^({MODEL_ID_PATTERN.removeprefix('^').removesuffix('$')})?$"}


def _page(limit: int) -> JsonObject:
    return {"minimum": 0, "maximum": limit}


FIELD_LIMITS: Final[dict[str, JsonObject]] = {
    "aitbc.v1.SamplingParams.max_tokens": {"minimum": 1, "maximum": MAX_TOKENS_LIMIT},
    "aitbc.v1.SamplingParams.temperature": {"minimum": 0, "maximum": 2},
    "aitbc.v1.SamplingParams.top_p": {"minimum": SMALLEST_FLOAT32, "maximum": 1},
    "aitbc.v1.SamplingParams.stop": {"maxItems": MAX_STOP_SEQUENCES},
    "aitbc.v1.SamplingParams.stop[]": {"minLength": 1, "maxLength": MAX_STOP_CHARS},
    "aitbc.v1.SubmitJobRequest.prompt": {"maxLength": MAX_PROMPT_CHARS},
    "aitbc.v1.SubmitJobRequest.model": _OPTIONAL_MODEL_ID,
    "aitbc.v1.QuoteJobRequest.model": _OPTIONAL_MODEL_ID,
    "aitbc.v1.SubmitJobRequest.max_price": {"minimum": 0, "maximum": MAX_AMOUNT},
    "aitbc.v1.SubmitJobRequest.idempotency_key": {"maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
    "aitbc.v1.ChatMessage.role": {"enum": ["system", "user", "assistant"]},
    "aitbc.v1.ChatMessage.content": {"maxLength": MAX_PROMPT_CHARS},
    "aitbc.v1.QuoteJobRequest.prompt": {"pattern": _NON_BLANK, "maxLength": MAX_PROMPT_CHARS},
    "aitbc.v1.QuoteJobRequest.max_tokens": {"minimum": 1, "maximum": MAX_TOKENS_LIMIT},
    "aitbc.v1.ListJobsRequest.limit": _page(MAX_PAGE_SIZE),
    # 0: no day window.
    "aitbc.v1.ListJobsRequest.days": {"minimum": 0, "maximum": MAX_DAYS},
    "aitbc.v1.ExportJobsRequest.days": {"minimum": 0, "maximum": MAX_DAYS},
    "aitbc.v1.GetJobStatsRequest.days": {"minimum": 0, "maximum": MAX_DAYS},
    # Empty: JSON.
    "aitbc.v1.ExportJobsRequest.format": {"enum": ["", *EXPORT_FORMATS]},
    "aitbc.v1.SetAccountPlanRequest.plan": {"enum": [plan.value for plan in Plan]},
    "aitbc.v1.CreateWebhookRequest.url": {"pattern": "^https?://[^/?#@\\s]+", "maxLength": MAX_URL_CHARS},
    "aitbc.v1.CreateWebhookRequest.events": {"minItems": 1},
    "aitbc.v1.CreateWebhookRequest.events[]": {"enum": list(JOB_EVENTS.values())},
    "aitbc.v1.WatchJobRequest.from_seq": _SEQUENCE,
    "aitbc.v1.ListBlocksRequest.limit": _page(MAX_EXPLORER_LIMIT),
    "aitbc.v1.ListTransactionsRequest.limit": _page(MAX_EXPLORER_LIMIT),
    "aitbc.v1.ListRecentReceiptsRequest.limit": _page(MAX_EXPLORER_LIMIT),
    "aitbc.v1.GetBlockRequest.height": {"minimum": 0, "maximum": _INT64_MAX},
    "aitbc.v1.ListReceiptsRequest.limit": _page(MAX_RECEIPTS),
    "aitbc.v1.ListAvailableJobsRequest.limit": _page(MAX_OFFERS),
    "aitbc.v1.CreditAccountRequest.account": {"minLength": 1, "maxLength": MAX_ACCOUNT_CHARS},
    "aitbc.v1.CreditAccountRequest.amount": {"minimum": 1, "maximum": MAX_AMOUNT},
    "aitbc.v1.CreditAccountRequest.credit_id": {"maxLength": MAX_CREDIT_ID_CHARS},
    "aitbc.v1.RegisterMinerRequest.miner_id": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"},
    "aitbc.v1.RegisterMinerRequest.capabilities": {"minItems": 1, "maxItems": MAX_MODELS},
    "aitbc.v1.RegisterMinerRequest.capabilities[]": {"minLength": 1, "maxLength": MAX_NAME_CHARS},
    "aitbc.v1.RegisterMinerRequest.max_concurrency": {"minimum": 0, "maximum": MAX_CONCURRENCY},
    "aitbc.v1.RegisterMinerRequest.public_key": _PUBLIC_KEY,
    "aitbc.v1.RegisterMinerRequest.payout_address": _ETH_ADDRESS,
    # aitbc.domain.units.parse_memory's syntax ("24GB", "24576MiB"), or empty.
    "aitbc.v1.GpuSummary.memory": {"pattern": "^(\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGTkmgt][Ii]?[Bb]|[Bb])?\\s*)?$"},
}


def limits_of(full_name: str, *, item: bool = False) -> JsonObject:
    """The keywords for a field (`item`: for each element of a repeated one)."""
    return FIELD_LIMITS.get(full_name + "[]" if item else full_name, {})
