"""One SQLite connection on a thread of its own: a store call is one hop to it, and writes commit in groups.

A store method hands the thread one plain function of the `sqlite3.Connection` that does all of its
statements, so a call costs one hand-over between the event loop and the thread whatever the number of
statements (aiosqlite, used before, hopped once per statement, cursor fetch and close: about fifty hops per
job; see docs/design.md, "Durability").

Writes are committed in groups. The thread takes the next write from its queue, then every write already
queued behind it (up to `MAX_GROUP`), runs each in a SAVEPOINT of one `BEGIN IMMEDIATE` transaction, and
commits once; only then are the callers answered, so an acknowledged write is a committed one. A write that
raises is rolled back to its savepoint and only its caller gets the error. When the store itself fails (a
full disk, an I/O error: `sqlite3.OperationalError`, `OSError`), the whole group is rolled back and every
caller in it gets StoreUnavailableError. An idle store adds no wait: a lone write commits at once, and
groups form only from what queued while the previous group ran.

Reads run between groups, in queue order, outside any transaction (WAL: they see the last commit). A write
function may also run Python that is not SQL (a block's signing), on this thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aitbc.store.base import StoreUnavailableError

T = TypeVar("T")
# Enough to batch every job of a busy coordinator's event-loop turn; small enough that one group's commit
# never holds the loop's answers back for long.
MAX_GROUP: Final = 256
# The store failing, as against a statement's own error (a constraint, a programming error): a full disk or
# an I/O error is an OperationalError.
_STORE_FAILURES = (sqlite3.OperationalError, OSError)


@dataclass(slots=True)
class _Call:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    writes: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    outcome: tuple[bool, Any] = field(default=(False, None))


_STOP: Final = object()


class SqliteThread:
    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str = "aitbc-sqlite") -> None:
        self._queue: queue.SimpleQueue[_Call | object] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._connect = connect
        self._connection: sqlite3.Connection | None = None
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self.groups = 0  # committed groups, and the writes in them: for tests and benchmarks
        self.grouped_writes = 0

    async def start(self) -> None:
        """Open the connection on the thread; what connecting raised is raised here."""
        self._thread.start()
        await asyncio.get_running_loop().run_in_executor(None, self._ready.wait)
        if self._open_error is not None:
            raise self._open_error

    async def read(self, function: Callable[..., T], *args: Any) -> T:
        """`function(connection, *args)`, outside any transaction."""
        return await self._submit(function, args, writes=False)

    async def write(self, function: Callable[..., T], *args: Any) -> T:
        """`function(connection, *args)` in a transaction, answered once that transaction committed."""
        return await self._submit(function, args, writes=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    async def _submit(self, function: Callable[..., T], args: tuple[Any, ...], *, writes: bool) -> T:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Call(function, args, writes, future, loop))
        return await future

    # On the thread

    def _run(self) -> None:
        try:
            self._connection = self._connect()
        except BaseException as error:
            self._open_error = error
            self._ready.set()
            return
        self._ready.set()
        connection = self._connection
        waiting: _Call | object | None = None
        try:
            while True:
                item = waiting if waiting is not None else self._queue.get()
                waiting = None
                if item is _STOP:
                    return
                assert isinstance(item, _Call)
                if not item.writes:
                    self._read(connection, item)
                    continue
                group = [item]
                while len(group) < MAX_GROUP:
                    try:
                        following = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(following, _Call) or not following.writes:
                        waiting = following  # a read or the stop: after this group, in queue order
                        break
                    group.append(following)
                self._commit(connection, group)
        finally:
            connection.close()

    def _read(self, connection: sqlite3.Connection, call: _Call) -> None:
        try:
            call.outcome = (True, call.function(connection, *call.args))
        except _STORE_FAILURES as error:
            call.outcome = (False, StoreUnavailableError(f"the store failed: {error}"))
        except BaseException as error:
            call.outcome = (False, error)
        _answer([call])

    def _commit(self, connection: sqlite3.Connection, group: list[_Call]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            for call in group:
                self._run_in_savepoint(connection, call)
            connection.execute("COMMIT")
            self.groups += 1
            self.grouped_writes += len(group)
        except _STORE_FAILURES as error:
            # A failed COMMIT leaves the transaction open; rolling it back lets the next group start at all.
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            failure = StoreUnavailableError(f"the store failed: {error}")
            for call in group:
                call.outcome = (False, failure)
        _answer(group)

    @staticmethod
    def _run_in_savepoint(connection: sqlite3.Connection, call: _Call) -> None:
        connection.execute("SAVEPOINT call")
        try:
            result = call.function(connection, *call.args)
        except _STORE_FAILURES:
            raise  # the store failed: the whole group goes
        except BaseException as error:
            connection.execute("ROLLBACK TO call")
            connection.execute("RELEASE call")
            call.outcome = (False, error)
            return
        connection.execute("RELEASE call")
        call.outcome = (True, result)


def _answer(calls: list[_Call]) -> None:
    """Hand the outcomes to their loop in one wake-up per loop (one, in practice)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for call in calls:
        by_loop.setdefault(call.loop, []).append(call)
    for loop, answered in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, answered)


def _settle(calls: list[_Call]) -> None:
    for call in calls:
        if call.future.done():  # the caller was cancelled; the write (if one) still happened
            continue
        ok, value = call.outcome
        if ok:
            call.future.set_result(value)
        else:
            call.future.set_exception(value)
