"""How the CLI reports a failed command: one error line in the CLI's words, then a hint that fits the cause."""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable

from aitbc import config
from aitbc.client import AitbcApiError, StatusCode

Handler = Callable[[argparse.Namespace], int]

# Request fields as the API names them, and the CLI's option (or argument) that sets each.
FLAGS = {
    "params.max_tokens": "--max-tokens",
    "params.temperature": "--temperature",
    "params.top_p": "--top-p",
    "max_price": "--max-price",
    "idempotency_key": "--idempotency-key",
    "queue_if_unavailable": "--queue",
    "from_seq": "--from-seq",
    "priority": "--priority",
    "model": "--model",
    "limit": "--limit",
    "status": "--status",
    "prompt": "PROMPT",
    "job_id": "JOB_ID",
    "key_id": "KEY_ID",
    "format": "--format",
    "expires": "--expires",
    "force": "--force",
    "share_id": "--revoke",
}
# Field names that cannot be mistaken for ordinary words may be renamed wherever a message mentions them.
_API_NAMES = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(name) for name in sorted(FLAGS, key=len, reverse=True) if "_" in name) + r")\b"
)


class CommandError(Exception):
    """A problem the user fixes on the command line; reported as one line, without a traceback."""


def error(message: str, *, prefix: str = "error") -> None:
    print(f"{prefix}: {message}", file=sys.stderr, flush=True)


def reports_errors(handler: Handler) -> Handler:
    """Turn the errors a user can act on into a message on stderr and exit status 1."""

    @functools.wraps(handler)
    def run(ns: argparse.Namespace) -> int:
        try:
            return handler(ns)
        except CommandError as problem:
            error(str(problem))
        except AitbcApiError as failure:
            error(f"{failure.reason}: {cli_wording(failure)}")
            if (hint := hint_for(failure, config.coordinator_address(getattr(ns, "coordinator", None)))) is not None:
                error(hint, prefix="hint")
        except KeyboardInterrupt:
            # Ctrl-C stops a command that only waits or watches: leave quietly, with the shell's status for SIGINT.
            return 130
        return 1

    return run


def cli_wording(failure: AitbcApiError) -> str:
    """The error's message with the API's field names as the CLI's options, and without API-only advice."""
    message = failure.problem
    field = failure.field
    if field in FLAGS and message.startswith(f"{field}: "):
        message = f"{FLAGS[field]}: {message[len(field) + 2 :]}"
    return _API_NAMES.sub(lambda match: FLAGS[match.group(1)], message)


def hint_for(failure: AitbcApiError, address: str) -> str | None:
    """What to do next, by what went wrong; None where the error says it all."""
    if failure.reason == "NO_ELIGIBLE_MINER":
        return "pass --queue to wait for a miner that serves it; `aitbc models` shows what online miners serve"
    if failure.reason == "QUEUE_FULL":
        wait = f" in {failure.retry_after:g}s" if failure.retry_after is not None else " later"
        return f"the coordinator's queue is full; try again{wait}"
    if failure.reason == "SHUTTING_DOWN":
        return f"the coordinator at {address} is stopping; run the command again once it is back"
    if failure.code == StatusCode.UNAVAILABLE and failure.reason == StatusCode.UNAVAILABLE.name:
        # No ErrorInfo: the transport's own UNAVAILABLE, so no coordinator answered at all.
        return (
            f"no coordinator answered at {address}; start one with `make run` or `aitbc coordinator`, "
            "or point --coordinator at a running one"
        )
    if failure.code == StatusCode.UNAUTHENTICATED:
        return f"pass a valid key with --api-key or ${config.ENV_API_KEY}"
    return None
