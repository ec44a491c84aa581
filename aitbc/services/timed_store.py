"""A `Store` that times every call it passes on: the store transaction latency metric.

A proxy rather than code in each store: every implementation (SQLite today, PostgreSQL later) is measured the
same way, and the coordinator's parts stay unaware of it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, cast

from aitbc.store.base import Store

# operation, whether it succeeded, seconds
StoreCallDone = Callable[[str, bool, float], None]


class _TimedStore:
    def __init__(self, store: Store, on_done: StoreCallDone) -> None:
        self._store = store
        self._on_done = on_done

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            ok = False
            try:
                result = await attribute(*args, **kwargs)
                ok = True
                return result
            finally:
                self._on_done(name, ok, time.perf_counter() - started)

        # Wrapped once per method: later lookups find it on the instance and skip __getattr__.
        setattr(self, name, timed)
        return timed


def timed_store(store: Store, on_done: StoreCallDone) -> Store:
    """`store`, with each coroutine method reporting its name, outcome and duration to `on_done`."""
    return cast(Store, _TimedStore(store, on_done))
