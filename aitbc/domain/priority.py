"""Job priority classes: part of a job's spec, and the order in which the fair queue serves them."""

from __future__ import annotations

from enum import IntEnum

from aitbc.domain.errors import invalid_argument


class Priority(IntEnum):
    # Lower values dispatch first; the values are stored, so they never change.
    HIGH = 0
    NORMAL = 1
    LOW = 2


def parse_priority(text: str) -> Priority:
    """A priority from its name in any case; an empty string means NORMAL."""
    name = text.strip().upper()
    if not name:
        return Priority.NORMAL
    try:
        return Priority[name]
    except KeyError:
        raise invalid_argument("priority", f"unknown priority {text!r}; expected high, normal or low") from None
