"""Log format (text or one JSON object per line) and the request context every log line carries.

The gateway and the coordinator set the request's id and W3C `traceparent` in context variables as a request
arrives; each task sees its own, so a log line written while serving a request names that request without
every call passing it along. Job fields (job_id, attempt, miner_id, ...) come from `extra=`.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Final

LOG_FORMATS: Final = ("text", "json")
ENV_LOG_FORMAT: Final = "AITBC_LOG_FORMAT"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REQUEST_ID_HEADER: Final = "x-request-id"
TRACEPARENT_HEADER: Final = "traceparent"
# Longer ids are replaced rather than logged and forwarded: a header is the caller's to choose, a log line's
# size and a gRPC metadata value's are not.
MAX_REQUEST_ID_LENGTH: Final = 128

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("aitbc_request_id", default="")
traceparent_var: contextvars.ContextVar[str] = contextvars.ContextVar("aitbc_traceparent", default="")
# Fields of every line logged in this context and the tasks it starts (a miner's id, say).
_bound_fields: contextvars.ContextVar[tuple[tuple[str, str | int], ...]] = contextvars.ContextVar(
    "aitbc_log_fields", default=()
)


def bind_log_fields(**fields: str | int) -> None:
    """Add `fields` to every JSON log line written from now on in this context (and tasks started from it)."""
    _bound_fields.set((*_bound_fields.get(), *fields.items()))


# What every LogRecord has; anything else on a record came from `extra=` and is a context field.
_STANDARD_ATTRIBUTES: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def valid_request_id(value: str | None) -> str | None:
    """`value` if it can be logged and forwarded as gRPC metadata as is (printable ASCII, bounded), else None."""
    if value and len(value) <= MAX_REQUEST_ID_LENGTH and value.isascii() and value.isprintable():
        return value
    return None


def valid_traceparent(value: str | None) -> str | None:
    """A W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`), else None: a malformed one is dropped, as the
    Trace Context spec asks, rather than passed on."""
    if value is None or len(value) != 55:
        return None
    parts = value.split("-")
    if [len(part) for part in parts] != [2, 32, 16, 2]:
        return None
    if not all(_is_lower_hex(part) for part in parts) or parts[0] == "ff":
        return None
    if set(parts[1]) == {"0"} or set(parts[2]) == {"0"}:
        return None
    return value


def _is_lower_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)


def request_metadata() -> tuple[tuple[str, str], ...]:
    """The current request's id and traceparent as gRPC metadata, for calls made on its behalf."""
    pairs = [(REQUEST_ID_HEADER, request_id_var.get()), (TRACEPARENT_HEADER, traceparent_var.get())]
    return tuple((key, value) for key, value in pairs if value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339 UTC), level, logger, message, then context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_bound_fields.get())  # later bindings of a name win
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        if traceparent := traceparent_var.get():
            entry["traceparent"] = traceparent
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_format_default() -> str:
    """`$AITBC_LOG_FORMAT` if it names a format, else text."""
    configured = os.environ.get(ENV_LOG_FORMAT, "").lower()
    return configured if configured in LOG_FORMATS else "text"


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    """`--log-format text|json` for the commands that serve (coordinator, gateway, miner, up)."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=log_format_default(),
        help=f"text, or json: one JSON object per line (default: ${ENV_LOG_FORMAT}, else text)",
    )


def configure_logging(level: str | int = logging.INFO, log_format: str = "text") -> None:
    """Send log lines to stderr in `log_format`, as `logging.basicConfig` does: not when the root logger has
    handlers already (a host application's, or pytest's)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
