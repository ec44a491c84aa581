"""A test and benchmark backend. It runs no model: it makes up deterministic text at a set pace.

The text is a word sequence derived from sha256 of the prompt (or of the conversation); one token is one word
and the space after it. Token i depends only on the prompt and i, so a resumed attempt continues exactly where
the interrupted one stopped, and tests can compute the expected output with `synthetic_text`. Stop strings are
honoured; temperature, top_p and `raw` are accepted and ignored: the output never varies.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncGenerator, Sequence

from miner.backends.base import Backend, GenerationRequest, TokenChunk
from miner.backends.stop_strings import StopStringScanner

DEFAULT_MODELS = ("synthetic",)
DEFAULT_TOKENS_PER_SECOND = 50.0

_WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "glacier",
    "harbor",
    "island",
    "jade",
    "kelp",
    "lagoon",
    "meadow",
    "nebula",
    "orchid",
    "prairie",
    "quartz",
    "river",
    "summit",
    "tundra",
    "umber",
    "valley",
    "willow",
    "xenon",
)


def synthetic_seed(request: GenerationRequest) -> str:
    """What the output derives from: the prompt, or the conversation written out."""
    if not request.messages:
        return request.prompt
    return "\n".join(f"{message.role}: {message.content}" for message in request.messages)


def synthetic_token(seed: str, index: int) -> str:
    """Token `index` (from 0) of the synthetic output for `seed`."""
    digest = hashlib.sha256(f"{index}:{seed}".encode()).digest()
    return _WORDS[int.from_bytes(digest[:8], "big") % len(_WORDS)] + " "


def synthetic_text(seed: str, stop: int, start: int = 0) -> str:
    """Tokens `start` to `stop` (exclusive) of the synthetic output for `seed`, without stop strings."""
    return "".join(synthetic_token(seed, index) for index in range(start, stop))


class SyntheticBackend(Backend):
    """Made-up text for tests and benchmarks; see the module docstring. Never use it to serve clients."""

    def __init__(
        self,
        *,
        models: Sequence[str] = DEFAULT_MODELS,
        tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND,
        first_token_delay: float = 0.0,
    ) -> None:
        """`tokens_per_second` of 0 or infinity means as fast as possible."""
        if not models:
            raise ValueError("models must name at least one model id")
        if tokens_per_second < 0 or first_token_delay < 0:
            raise ValueError("tokens_per_second and first_token_delay must not be negative")
        self._models = tuple(models)
        self._token_interval = 0.0 if tokens_per_second in (0.0, math.inf) else 1.0 / tokens_per_second
        self._first_token_delay = first_token_delay

    @property
    def backend_name(self) -> str:
        return "synthetic"

    @property
    def models(self) -> Sequence[str]:
        return self._models

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        self.check_model(request.model)
        return len(synthetic_seed(request).split())

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        self.check_model(request.model)
        seed = synthetic_seed(request)
        scanner = StopStringScanner(request.stop)
        loop = asyncio.get_running_loop()
        due = loop.time() + self._first_token_delay
        uncounted = 0
        for index in range(request.resume_tokens, request.max_tokens):
            # sleep(0) still yields to the loop, so an unpaced generation stays cancellable.
            await asyncio.sleep(max(0.0, due - loop.time()))
            # One interval after the previous token was due: no drift, and a consumer that held the generator
            # up gets no burst of make-up tokens either, as with a real engine.
            due = max(due, loop.time()) + self._token_interval
            uncounted += 1
            text, stopped = scanner.feed(synthetic_token(seed, index))
            if stopped:
                yield TokenChunk(text, uncounted, "stop")
                return
            if index == request.max_tokens - 1:
                yield TokenChunk(text + scanner.flush(), uncounted, "length")
                return
            if text:
                yield TokenChunk(text, uncounted)
                uncounted = 0
        yield TokenChunk("", 0, "length")

    async def close(self) -> None:
        """Nothing to free."""
