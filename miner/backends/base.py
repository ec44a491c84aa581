"""The interface between the miner agent and an inference engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal

# "stop": the model ended its answer; "length": max_tokens (or the context) ran out.
FinishReason = Literal["stop", "length"]


class InvalidRequestError(ValueError):
    """The request itself cannot be served (an unknown model, a bad parameter): retrying elsewhere will not help."""


@dataclass(frozen=True, slots=True)
class GpuInfo:
    name: str
    vram_bytes: int
    count: int = 1


@dataclass(frozen=True, slots=True)
class ChatMessage:
    # "system", "user" or "assistant".
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One attempt at a job, validated on construction."""

    # An instruction: the backend wraps it in the model's chat template as one user turn, unless `raw`.
    prompt: str
    model: str
    # The whole output's budget, including `resume_tokens`.
    max_tokens: int
    # 0 means greedy.
    temperature: float
    top_p: float
    # A conversation to complete instead of `prompt`.
    messages: tuple[ChatMessage, ...] = ()
    # Continue `prompt` as plain text, without the chat template.
    raw: bool = False
    # Generation ends before the first of these; they are not part of the output.
    stop: tuple[str, ...] = ()
    # Output an earlier attempt produced and clients already saw: generation continues after it and never
    # repeats it.
    resume_text: str = ""
    resume_tokens: int = 0

    def __post_init__(self) -> None:
        if self.messages and self.raw:
            raise InvalidRequestError("raw applies to a prompt, not to messages")
        if not all(self.stop):
            raise InvalidRequestError("stop strings must not be empty")
        if self.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be at least 1, got {self.max_tokens}")
        # Written as a range so that NaN fails too.
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidRequestError(f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidRequestError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.resume_tokens <= self.max_tokens:
            raise InvalidRequestError(
                f"resume_tokens must be between 0 and max_tokens ({self.max_tokens}), got {self.resume_tokens}"
            )

    @property
    def tokens_to_generate(self) -> int:
        """This attempt's budget."""
        return self.max_tokens - self.resume_tokens


@dataclass(frozen=True, slots=True)
class TokenChunk:
    """Text generated since the previous chunk and the number of tokens it took.

    The last chunk of a generation carries its finish reason; it may hold no text. A token can carry no text of
    its own (half of a multi-byte character): its count then rides on the next chunk that has text.
    """

    text: str
    token_count: int
    finish_reason: FinishReason | None = None


class Backend(ABC):
    """An inference engine the miner agent drives.

    `generate` is an async generator: cancelling the task that consumes it, or closing it, must stop the
    engine's work promptly and free what it holds, so that the next generation can start.
    """

    @property
    @abstractmethod
    def backend_name(self) -> str:
        """How the miner names its engine to the coordinator, e.g. "llama.cpp"."""

    @property
    @abstractmethod
    def models(self) -> Sequence[str]:
        """Model ids served, as clients name them."""

    @property
    def max_concurrency(self) -> int | None:
        """Most generations the engine runs at once; None when only the agent's setting limits it."""
        return None

    def gpus(self) -> list[GpuInfo]:
        """The GPUs generation runs on; empty on CPU."""
        return []

    def check_model(self, model: str) -> None:
        if model not in self.models:
            served = ", ".join(self.models)
            raise InvalidRequestError(f"model {model!r} is not served here (this miner serves {served})")

    @abstractmethod
    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """Tokens the prompt takes once formatted for the model, without running the model.

        Raises InvalidRequestError when the request cannot be served here.
        """

    @abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        """Stream the continuation of `request`: at most `request.tokens_to_generate` tokens, after `resume_text`.

        Raises InvalidRequestError when the request cannot be served here; any other exception is a failure of
        the engine, which another miner may not have.
        """

    @abstractmethod
    async def close(self) -> None:
        """Free the engine. No generation may be running."""
