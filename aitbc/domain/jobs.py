"""Jobs: what a client asks for, validated, and the record the coordinator keeps."""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from aitbc.domain.canonical import require_int
from aitbc.domain.errors import invalid_argument
from aitbc.domain.money import MAX_AMOUNT
from aitbc.domain.priority import Priority
from aitbc.domain.states import JobState

MAX_TOKENS_LIMIT = 8192
MAX_PROMPT_CHARS = 200_000
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 64
CHAT_ROLES = frozenset({"system", "user", "assistant"})
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(days=7)
MAX_IDEMPOTENCY_KEY_CHARS = 128
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
# The same, for the OpenAPI document.
MODEL_ID_PATTERN = _MODEL_ID.pattern


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling parameters with the seed documents' defaults."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    stream: bool = False
    stop: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stream: bool = False,
        stop: tuple[str, ...] = (),
    ) -> SamplingParams:
        """Fill defaults for unset values and reject anything out of range."""
        params = cls(
            max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            top_p=DEFAULT_TOP_P if top_p is None else top_p,
            stream=stream,
            stop=stop,
        )
        params.validate()
        return params

    def validate(self) -> None:
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise invalid_argument(
                "params.max_tokens", f"must be between 1 and {MAX_TOKENS_LIMIT}, got {self.max_tokens}"
            )
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 2.0):
            raise invalid_argument("params.temperature", f"must be between 0.0 and 2.0, got {self.temperature}")
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise invalid_argument("params.top_p", f"must be greater than 0.0 and at most 1.0, got {self.top_p}")
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise invalid_argument("params.stop", f"at most {MAX_STOP_SEQUENCES} stop strings, got {len(self.stop)}")
        if any(not 1 <= len(stop) <= MAX_STOP_CHARS for stop in self.stop):
            raise invalid_argument("params.stop", f"each stop string must have 1 to {MAX_STOP_CHARS} characters")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A validated job request: an instruction (`prompt`) or a conversation (`messages`)."""

    prompt: str
    model: str
    params: SamplingParams
    messages: tuple[ChatMessage, ...] = ()
    # Continue the prompt as plain text instead of wrapping it in the chat template.
    raw: bool = False
    priority: Priority = Priority.NORMAL
    # The most the client pays (µcr, an upper-bound estimate); None: no cap.
    max_price: int | None = None
    idempotency_key: str = ""
    # How long the job may wait for its first miner.
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def build(
        cls,
        *,
        prompt: str,
        model: str,
        params: SamplingParams,
        messages: tuple[ChatMessage, ...] = (),
        raw: bool = False,
        priority: Priority = Priority.NORMAL,
        max_price: int | None = None,
        idempotency_key: str = "",
        ttl: timedelta | None = None,
    ) -> JobSpec:
        if messages:
            if prompt:
                raise invalid_argument("prompt", "give either prompt or messages, not both")
            if raw:
                raise invalid_argument("raw", "applies to a prompt, not to messages")
            _validate_messages(messages)
        elif not prompt.strip():
            raise invalid_argument("prompt", "must not be empty")
        size = len(prompt) + sum(len(message.content) for message in messages)
        if size > MAX_PROMPT_CHARS:
            raise invalid_argument("prompt", f"is {size} characters; the limit is {MAX_PROMPT_CHARS}")
        if not _MODEL_ID.match(model):
            raise invalid_argument("model", f"{model!r} is not a valid model id")
        if max_price is not None:
            require_int(max_price, field="max_price", maximum=MAX_AMOUNT)
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS or not idempotency_key.isprintable():
            raise invalid_argument(
                "idempotency_key", f"must be printable, at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
            )
        ttl = DEFAULT_TTL if ttl is None or not ttl else ttl
        if not timedelta(seconds=1) <= ttl <= MAX_TTL:
            raise invalid_argument("ttl", f"must be between 1 second and {MAX_TTL.days} days, got {ttl}")
        return cls(
            prompt=prompt,
            model=model,
            params=params,
            messages=messages,
            raw=raw,
            priority=priority,
            max_price=max_price,
            idempotency_key=idempotency_key,
            ttl=ttl,
        )

    def input_hash(self) -> str:
        """sha256 of the canonical request (model, prompt or messages, raw, sampling), for receipts and dedup."""
        params = self.params
        canonical = {
            "model": self.model,
            "prompt": self.prompt,
            "messages": [asdict(message) for message in self.messages],
            "raw": self.raw,
            "params": {
                "max_tokens": params.max_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "stop": list(params.stop),
            },
        }
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


def _validate_messages(messages: tuple[ChatMessage, ...]) -> None:
    for index, message in enumerate(messages):
        if message.role not in CHAT_ROLES:
            roles = ", ".join(sorted(CHAT_ROLES))
            raise invalid_argument(f"messages[{index}].role", f"{message.role!r} is not one of {roles}")
    if messages[-1].role == "assistant" or not any(message.content.strip() for message in messages):
        raise invalid_argument("messages", "must end with a system or user turn that has content")


def new_job_id() -> str:
    return f"job_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored. `attempt` counts assignments and fences miner messages."""

    job_id: str
    owner_id: str
    state: JobState
    spec: JobSpec
    created_at: datetime
    updated_at: datetime
    result: str = ""
    miner_id: str = ""
    attempt: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""
    finish_reason: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # A pending job not picked up by then fails as expired.
    expires_at: datetime | None = None
    # The routing decision: cost estimate of the chosen route, the miner's reputation then.
    estimated_cost: int = 0  # µcr
    miner_reputation: int = 0
    # Attempts that ended through no fault of the job; the attempt cap does not count them.
    excused_attempts: int = 0
    # The receipt of a job that was charged (docs/settlement.md); empty otherwise.
    receipt_id: str = ""
    # When the prompt, result and logs were deleted (by the owner or by retention): the job is a tombstone.
    result_deleted_at: datetime | None = None
    # Derived, never stored: when the result will be deleted under the owner's plan (docs/results.md).
    result_expires_at: datetime | None = field(default=None, compare=False)
    # Derived, never stored: while running from the measured speed; while pending from the queue.
    estimated_completion: datetime | None = field(default=None, compare=False)
    queue_position: int | None = field(default=None, compare=False)
    estimated_start: datetime | None = field(default=None, compare=False)
    # Derived, never stored: a cancel was asked for and the miner has not acknowledged it yet (`canceling`).
    cancel_requested: bool = field(default=False, compare=False)

    @property
    def counted_attempts(self) -> int:
        """Attempts that count against the cap: those the job itself may have caused to fail."""
        return self.attempt - self.excused_attempts

    @property
    def progress(self) -> int:
        """0..100: completion tokens against max_tokens; 100 once completed."""
        if self.state is JobState.COMPLETED:
            return 100
        return min(99, self.completion_tokens * 100 // self.spec.params.max_tokens)


def estimate_start(now: datetime, *, position: int, slots: int, mean_job_seconds: float | None) -> datetime | None:
    """When a pending job should start: the jobs ahead of it spread over the slots that could run it.

    None without slots or a measured job duration to go on.
    """
    if slots <= 0 or not mean_job_seconds:
        return None
    return now + timedelta(seconds=(position // slots) * mean_job_seconds)


def estimate_completion(
    now: datetime, *, max_tokens: int, completion_tokens: int, tokens_per_second: float
) -> datetime | None:
    """When a job generating at `tokens_per_second` reaches max_tokens (an upper bound: EOS may come first)."""
    if tokens_per_second <= 0:
        return None
    return now + timedelta(seconds=max(max_tokens - completion_tokens, 0) / tokens_per_second)
