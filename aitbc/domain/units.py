"""Quantities written as text: memory sizes such as "24GB"."""

from __future__ import annotations

import re

from aitbc.domain.errors import invalid_argument

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(text: str, *, field: str) -> int:
    """Bytes from text such as "24GB", "24 GiB" or "24576MiB".

    GPU vendors write GB for binary gigabytes (an RTX 4090's "24GB" is 24 GiB),
    so GB and GiB both count in powers of two.
    """
    match = _MEMORY.match(text)
    if match is None:
        raise invalid_argument(field, f"{text!r} is not a memory size such as 24GB or 24576MiB")
    number, unit = match.groups()
    return int(float(number) * _MEMORY_UNITS[(unit or "")[:1].upper()])
