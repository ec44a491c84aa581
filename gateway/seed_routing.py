"""Seed 004's routing API: `POST /api/jobs/submit` picks the node a job would run on, and prices it in wei.

Request `{"modelId", "input", "requesterAddress"}`; answer
`{"ok": true, "data": {"modelId", "assignedNode", "nodeReputation",
"estimatedCostWei", "estimatedCostEth", "inputHash", "instructions"}}`.
Errors are `{"ok": false, "error": MESSAGE, "error_code", "field"?}` with the
usual HTTP status; no eligible node is a 503, as the seed says.

The node is the miner QuoteJob names among those that registered a payout
address (`aitbc miner --payout-address`), and `assignedNode` is that
address. `nodeReputation` is the coordinator's 0..10000 reputation on the
seed's 0..100 scale. The price is QuoteJob's bound in µcr converted at the
operator's rate (`aitbc gateway --wei-per-credit`); without a rate the route
answers 503, since a made-up rate would misquote money. `inputHash` is the
Keccak-256 of the input's UTF-8 bytes, 0x-prefixed, as `keccak256(bytes(input))`
computes it on chain. Nothing is submitted: the instructions say how to run
the job here, where the dispatcher routes it again when it is submitted.
"""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aitbc.domain.eth_address import address_problem, keccak256
from aitbc.v1 import jobs_pb2
from gateway.errors import GatewayError, invalid_argument
from gateway.limits import read_body
from gateway.rpc import CoordinatorClient, require_api_key
from gateway.transcoding import decode_json_body

MICRO_PER_CREDIT: Final = 1_000_000
WEI_PER_ETH: Final = 10**18
REPUTATION_SCALE: Final = 100  # the coordinator's 0..10000 over the seed's 0..100
MAX_MODEL_ID_CHARS: Final = 128
# The coordinator's prompt limit (MAX_PROMPT_CHARS); it checks again.
MAX_INPUT_CHARS: Final = 200_000
FIELDS: Final = ("modelId", "input", "requesterAddress")
# QuoteJob's field names as the seed spells them, for errors the coordinator reports.
SEED_NAMES: Final = {"model": "modelId", "prompt": "input"}

_QUOTE = jobs_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name["QuoteJob"]


def wei_for(micro_credits: int, wei_per_credit: int) -> int:
    """µcr at `wei_per_credit`, rounded up: an estimate must not undercharge."""
    return -(-micro_credits * wei_per_credit // MICRO_PER_CREDIT)


def eth_text(wei: int) -> str:
    """Wei as a decimal string of ETH without exponent or trailing zeros: 1200000000000000 -> "0.0012"."""
    text = format(Decimal(wei) / WEI_PER_ETH, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def seed_error(error: GatewayError) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error": error.detail, "error_code": error.error_code}
    if error.field:
        body["field"] = SEED_NAMES.get(error.field, error.field)
    return JSONResponse(body, status_code=error.status, headers=error.headers())


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid_argument(f"{name} is required: a non-empty string", name)
    if len(value) > limit:
        raise invalid_argument(f"{name} is {len(value)} characters; the limit is {limit}", name)
    return value


def parse_submit(body: object) -> tuple[str, str, str]:
    """modelId, input and requesterAddress, checked."""
    if not isinstance(body, dict):
        raise invalid_argument("the request body must be a JSON object")
    if unknown := sorted(set(body) - set(FIELDS)):
        raise invalid_argument(f"unknown field {unknown[0]!r}; expected {', '.join(FIELDS)}", unknown[0])
    model = _text(body, "modelId", MAX_MODEL_ID_CHARS)
    text = _text(body, "input", MAX_INPUT_CHARS)
    address = _text(body, "requesterAddress", 42)
    if (problem := address_problem(address)) is not None:
        raise invalid_argument(f"requesterAddress {problem}", "requesterAddress")
    return model, text, address


class SeedRouting:
    def __init__(self, coordinator: CoordinatorClient, max_body_bytes: int, wei_per_credit: int | None) -> None:
        self._coordinator = coordinator
        self._max_body_bytes = max_body_bytes
        self._wei_per_credit = wei_per_credit

    def routes(self) -> list[Route]:
        # Served under /api like every route: the seed's path is /api/jobs/submit.
        return [Route("/jobs/submit", self._submit, methods=["POST"])]

    async def _submit(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except GatewayError as error:
            return seed_error(error)

    async def _route(self, request: Request) -> Response:
        api_key = require_api_key(request.headers)
        model, text, _requester = parse_submit(decode_json_body(await read_body(request, self._max_body_bytes)))
        if self._wei_per_credit is None:
            raise GatewayError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "NOT_CONFIGURED",
                "this gateway has no wei conversion rate; its operator sets one with --wei-per-credit",
            )
        quote_request = jobs_pb2.QuoteJobRequest(model=model, prompt=text, payout_address_required=True)
        quote = await self._coordinator.unary(_QUOTE, quote_request, jobs_pb2.QuoteJobResponse, api_key)
        wei = wei_for(quote.estimated_cost, self._wei_per_credit)
        instructions = {
            "step1": f'Submit the job: POST /api/v1/jobs with {{"model": "{quote.model}", "prompt": input}} '
            f"and your API key; it holds at most {quote.estimated_cost} µcr ({eth_text(wei)} ETH) until it ends",
            "step2": "Wait for the assigned node to complete the inference: GET /api/v1/jobs/{job_id}/stream",
        }
        data = {
            "modelId": quote.model,
            "assignedNode": quote.payout_address,
            "nodeReputation": round(quote.miner_reputation / REPUTATION_SCALE),
            "estimatedCostWei": str(wei),
            "estimatedCostEth": eth_text(wei),
            "inputHash": "0x" + keccak256(text.encode()).hex(),
            "instructions": instructions,
        }
        return JSONResponse({"ok": True, "data": data})
