"""Following a job as it runs: its tokens on stdout, its states and its place in the queue on stderr."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import TextIO

from aitbc.cli.reporting import error
from aitbc.client import AitbcApiError, Client, Job, JobEvent, JobStatus

# How often the queue position and estimated start are asked for again while a job waits. The watch stream
# carries state changes and tokens only (positions would be stale on replay); GetJob answers both.
QUEUE_REFRESH_SECONDS = 1.0

# On a terminal: back to the line's start and erase it, so the next status replaces the last.
_REWRITE = "\r\x1b[K"


def follow(client: Client, job_id: str, *, from_seq: int, show_states: bool) -> int:
    """Print the job's tokens as they arrive; 0 once it completed, 1 (and the reason) if it failed or was canceled.

    While the job waits for a miner, its queue position and estimated start show on stderr. A Ctrl-C
    (KeyboardInterrupt) ends the output line and propagates: the caller decides what it means for the job.
    """
    final: JobEvent | None = None
    wrote_text = False
    waiting = QueueWatcher(client, job_id, StatusLine(sys.stderr))
    try:
        for event in client.stream(job_id, from_seq=from_seq):
            if event.kind == "tokens":
                sys.stdout.write(event.text)
                sys.stdout.flush()
                wrote_text = wrote_text or bool(event.text)
                continue
            if event.status is not JobStatus.PENDING:
                waiting.stop()
            if event.is_final:
                final = event
            elif show_states:
                print(_describe_state(event), file=sys.stderr, flush=True)
            if event.status is JobStatus.PENDING:
                waiting.start()
    finally:
        waiting.stop()
        if wrote_text:
            print(flush=True)
    if final is not None:
        # Reported after the output's final newline, so a terminal shows it on a line of its own.
        if show_states:
            print(_describe_state(final), file=sys.stderr)
        status, failure = final.status, final.error
    else:
        # A stream resumed past its last event ends without a state change; the job itself says how it ended.
        job = client.get_job(job_id)
        status, failure = job.status, job.error
    if status == JobStatus.COMPLETED:
        return 0
    error(f"job {job_id} {status}: {failure or 'no reason given'}")
    return 1


def _describe_state(event: JobEvent) -> str:
    description = f"state: {event.status}"
    if event.miner_id is not None:
        description += f" on {event.miner_id} (attempt {event.attempt})"
    if event.error is not None:
        description += f": {event.error}"
    return description


def describe_wait(job: Job, now: datetime) -> str | None:
    """A pending job's place in the queue and when it should start, in words; None for a job that is not waiting."""
    if job.status is not JobStatus.PENDING or job.routing.queue_position is None:
        return None
    position = job.routing.queue_position
    ahead = "next in line" if position == 0 else f"{position} job{'' if position == 1 else 's'} ahead"
    start = job.routing.estimated_start
    if start is None:
        # No online miner serves the model yet, or none has finished a job to measure the pace by.
        return f"queued: {ahead}; start time not known yet"
    seconds = round((start - now).total_seconds())
    return f"queued: {ahead}; starts {'now' if seconds < 1 else 'in about ' + _duration(seconds)}"


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class StatusLine:
    """A status shown on `stream`: one line rewritten in place on a terminal, elsewhere a line per change."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._lock = threading.Lock()
        self._shown = ""
        self._closed = False

    def show(self, text: str) -> None:
        with self._lock:
            if self._closed or text == self._shown:
                return
            self._stream.write(_REWRITE + text if self._tty else text + "\n")
            self._stream.flush()
            self._shown = text

    def clear(self, *, closing: bool = False) -> None:
        """Erase the status from a terminal; with `closing`, show nothing more (a late refresh may still run)."""
        with self._lock:
            if self._tty and self._shown:
                self._stream.write(_REWRITE)
                self._stream.flush()
            self._shown = ""
            self._closed = self._closed or closing

    def reopen(self) -> None:
        with self._lock:
            self._closed = False


class QueueWatcher:
    """While a job is pending, shows its queue position and estimated start, refreshed every second."""

    def __init__(self, client: Client, job_id: str, line: StatusLine) -> None:
        self._client = client
        self._job_id = job_id
        self._line = line
        self._stopped: threading.Event | None = None

    def start(self) -> None:
        """Show the job's place now (so it is on screen before anything else happens), then keep it current."""
        if self._stopped is not None:
            return
        self._line.reopen()
        self._refresh()
        stopped = self._stopped = threading.Event()
        # A daemon thread: a refresh blocked on a slow coordinator must not hold up the command's exit.
        threading.Thread(target=self._run, args=(stopped,), name="aitbc queue status", daemon=True).start()

    def stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()
            self._stopped = None
        self._line.clear(closing=True)

    def _run(self, stopped: threading.Event) -> None:
        while not stopped.wait(QUEUE_REFRESH_SECONDS):
            try:
                self._refresh()
            except ValueError:
                return  # the command closed the channel while this refresh was starting: it is over

    def _refresh(self) -> None:
        try:
            job = self._client.get_job(self._job_id)
        except AitbcApiError:
            return  # the watch stream reports what matters; the next refresh may do better
        text = describe_wait(job, datetime.now(UTC))
        if text is not None:
            self._line.show(text)
