"""Stop strings on streamed text: generation ends before the first one, which is not part of the output."""

from __future__ import annotations

from collections.abc import Sequence


class StopStringScanner:
    """Cuts streamed text before the first stop string.

    Text that may be the start of a stop string is held back until the next text settles it, so that no part of
    a stop string is ever emitted. Held-back text is released by `flush` when generation ends otherwise.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stops)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that is safe to emit, and whether a stop string was reached: then generation must end."""
        if not self._stops:
            return text, False
        pending = self._held + text
        found = [index for stop in self._stops if (index := pending.find(stop)) >= 0]
        if found:
            self._held = ""
            return pending[: min(found)], True
        kept = max(_partial_match(pending, stop) for stop in self._stops)
        self._held = pending[len(pending) - kept :]
        return pending[: len(pending) - kept], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def _partial_match(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `stop`."""
    for length in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:length]):
            return length
    return 0
