"""From the dynamic generator's results to the miner's token chunks, for one job.

A result is the dict `ExLlamaV2DynamicGenerator.iterate()` returns per job and stage (exllamav2 0.3.2). Only
"streaming" results carry output: `text` (absent while ExLlamaV2 holds back half a character) and `token_ids`, the
tokens of that text, shape (1, n). The last one has `eos` set, with `eos_reason`, `new_tokens`, `prompt_tokens` and
the job's timings. Nothing here imports exllamav2 or torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from miner.backends.base import FinishReason, TokenChunk
from miner.backends.stop_strings import StopStringScanner


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended, as its last result tells."""

    # "stop_token" or "max_new_tokens" here: stop strings are the miner's (see JobOutput), and no job has filters.
    eos_reason: str
    # Tokens sampled, the one that ended the job included.
    new_tokens: int
    prompt_tokens: int
    # Of the prompt, tokens whose cache pages an earlier job had already filled.
    cached_tokens: int
    # Seconds from enqueue to the start of prefill, from there to the first token, and from there to the last.
    time_enqueued: float
    time_prefill: float
    time_generate: float


@dataclass(frozen=True, slots=True)
class Step:
    """One streaming result of a job."""

    text: str
    token_count: int
    outcome: Outcome | None = None


def parse_result(result: Mapping[str, Any]) -> Step | None:
    """The streaming result as a Step; None for the other stages ("started", "prefill")."""
    if result["stage"] != "streaming":
        return None
    token_ids = result.get("token_ids")
    return Step(
        text=result.get("text", ""),
        token_count=0 if token_ids is None else int(token_ids.shape[-1]),
        outcome=_outcome(result) if result["eos"] else None,
    )


def _outcome(result: Mapping[str, Any]) -> Outcome:
    return Outcome(
        eos_reason=result["eos_reason"],
        new_tokens=result["new_tokens"],
        prompt_tokens=result["prompt_tokens"],
        cached_tokens=result["cached_tokens"],
        time_enqueued=result["time_enqueued"],
        time_prefill=result["time_prefill"],
        time_generate=result["time_generate"],
    )


class JobOutput:
    """Turns one job's steps into token chunks and says when the job is over.

    The request's stop strings are applied here, with the scanner every backend shares, rather than by ExLlamaV2:
    when ExLlamaV2 stops on an EOS token it drops the text it was holding back as a possible stop string, where
    the miner's rule is to release it.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self._scanner = StopStringScanner(stop)
        self._emitted = 0
        self._uncounted = 0
        self.finished = False
        # Set when the generator ended the job; None while it runs, or when a stop string ended it.
        self.outcome: Outcome | None = None

    def feed(self, step: Step) -> TokenChunk | None:
        """The chunk to emit for `step`, if any. Once `finished`, the job must leave the generator."""
        text, stopped = self._scanner.feed(step.text)
        self._uncounted += step.token_count
        if stopped:
            self.finished = True
            return self._chunk(text, "stop")
        if step.outcome is not None:
            self.finished = True
            self.outcome = step.outcome
            # The last result's count is the generator's own; it includes the EOS token, which is no output, and
            # tokens held back as half a character, which no result listed.
            eos_token = 1 if step.outcome.eos_reason == "stop_token" else 0
            self._uncounted = step.outcome.new_tokens - eos_token - self._emitted
            return self._chunk(text + self._scanner.flush(), _finish_reason(step.outcome))
        return self._chunk(text, None) if text else None

    def _chunk(self, text: str, finish_reason: FinishReason | None) -> TokenChunk:
        chunk = TokenChunk(text, self._uncounted, finish_reason)
        self._emitted += self._uncounted
        self._uncounted = 0
        return chunk


def _finish_reason(outcome: Outcome) -> FinishReason:
    # The budget is clamped to the context, so running out of new tokens is running out of length either way.
    return "stop" if outcome.eos_reason == "stop_token" else "length"
