"""The `aitbc` CLI's client verbs: submit, status, watch, jobs, get, cancel.

Each verb exists twice: in the short form of the seed's job-submission guide (`aitbc status JOB_ID`) and in
the long form of its job-status guide (`aitbc client status --job-id JOB_ID`); both share one handler.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aitbc import config
from aitbc.client import AitbcApiError, Client, Job, JobEvent, JobStatus, StatusCode
from aitbc.domain.errors import AitbcError
from aitbc.domain.money import format_credits, parse_credits

Handler = Callable[[argparse.Namespace], int]
# Whatever parser class the caller's subcommands use (the `aitbc` command's own, or a plain one in tests).
ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)

# The fields of the seed's status response, in its order; `get` prints the whole job.
_STATUS_FIELDS = (
    "job_id",
    "status",
    "progress",
    "miner_id",
    "created_at",
    "started_at",
    "completed_at",
    "estimated_completion",
    "error",
)
_PROMPT_COLUMN_WIDTH = 40


class _CommandError(Exception):
    """A problem the user fixes on the command line; reported as one line, without a traceback."""


def register_client_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    """Add the client verbs to the `aitbc` parser, plus `aitbc client VERB` with `--job-id` options."""
    _add_verbs(subparsers, long_form=False)
    client = subparsers.add_parser("client", help="job commands in the long form: aitbc client status --job-id ID")
    verbs = client.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_verbs(verbs, long_form=True)


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help=f"coordinator gRPC address (default: ${config.ENV_COORDINATOR}, else {config.DEFAULT_GRPC_ADDRESS})",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"client API key (default: ${config.ENV_API_KEY}, else the key saved in {config.aitbc_home()})",
    )


def _add_verbs(
    subparsers: argparse._SubParsersAction[ParserT],
    *,
    long_form: bool,
) -> None:
    def add(name: str, help_text: str, handler: Handler, *, aliases: Iterable[str] = ()) -> ParserT:
        parser = subparsers.add_parser(name, aliases=list(aliases), help=help_text, description=help_text)
        _add_connection_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    def add_job_id(parser: argparse.ArgumentParser) -> None:
        if long_form:
            parser.add_argument("--job-id", required=True, metavar="JOB_ID")
        else:
            parser.add_argument("job_id", metavar="JOB_ID")

    submit = add("submit", "queue a job and print its id, or stream its output with --stream", _submit)
    submit.add_argument("prompt", metavar="PROMPT")
    submit.add_argument("--model", default=config.DEFAULT_MODEL, help="model id (default: %(default)s)")
    submit.add_argument("--max-tokens", type=int, metavar="N", help="tokens to generate (default: 256)")
    submit.add_argument("--temperature", type=float, metavar="T", help="0.0 to 2.0, 0 is greedy (default: 0.7)")
    submit.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling (default: 0.9)")
    submit.add_argument("--stream", action="store_true", help="print the output as it is generated")
    submit.add_argument(
        "--queue",
        action="store_true",
        help="wait in the queue when no online miner can run the job now (default: fail with UNAVAILABLE)",
    )
    submit.add_argument("--priority", choices=["high", "normal", "low"], help="scheduling class (default: normal)")
    submit.add_argument(
        "--max-price", type=_credits, metavar="CREDITS", help="the most the job may cost (AIT credits, 6 decimals)"
    )
    submit.add_argument("--idempotency-key", metavar="KEY", help="retries with the same key return the same job")

    add_job_id(add("status", "print a job's status as JSON", _status))

    watch = add("watch", "print a job's output as it is generated; state changes go to stderr", _watch)
    add_job_id(watch)
    watch.add_argument(
        "--from-seq", type=int, default=0, metavar="N", help="resume from event N (the last one seen + 1)"
    )

    list_name, list_aliases = ("list", ["jobs"]) if long_form else ("jobs", [])
    jobs = add(list_name, "list your jobs, newest first", _jobs, aliases=list_aliases)
    jobs.add_argument("--status", type=JobStatus, choices=list(JobStatus), help="only jobs in this state")
    jobs.add_argument("--limit", type=int, metavar="N", help="at most N jobs (default: 50)")
    jobs.add_argument("--json", action="store_true", help="print JSON instead of a table")

    add_job_id(add("get", "print a job, including its output, as JSON", _get))
    add_job_id(add("cancel", "cancel a job and print the tokens it produced", _cancel))
    if not long_form:
        models = add("models", "the model catalog and which models online miners serve", _models)
        models.add_argument("--json", action="store_true", help="print JSON instead of a table")
        miners = add("miners", "miners the coordinator knows, with their reputation", _miners)
        miners.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _credits(text: str) -> int:
    """µcr from a credit amount on the command line ("0.25"), so no float reaches the wire."""
    try:
        return parse_credits(text, field="--max-price")
    except AitbcError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _reports_errors(handler: Handler) -> Handler:
    """Turn the errors a user can act on into a message on stderr and exit status 1."""

    @functools.wraps(handler)
    def run(ns: argparse.Namespace) -> int:
        try:
            return handler(ns)
        except _CommandError as error:
            _error(str(error))
        except AitbcApiError as error:
            _error(str(error))
            if error.code == StatusCode.UNAVAILABLE:
                address = config.coordinator_address(ns.coordinator)
                _error(
                    f"no coordinator answered at {address}; start one with `make run` or `aitbc coordinator`, "
                    "or point --coordinator at a running one",
                    prefix="hint",
                )
            elif error.code == StatusCode.UNAUTHENTICATED:
                _error(f"pass a valid key with --api-key or ${config.ENV_API_KEY}", prefix="hint")
        except KeyboardInterrupt:
            # Ctrl-C is how one stops watching a job: leave quietly, with the shell's status for SIGINT.
            return 130
        return 1

    return run


def _error(message: str, *, prefix: str = "error") -> None:
    print(f"{prefix}: {message}", file=sys.stderr)


def _open_client(ns: argparse.Namespace) -> Client:
    key = config.api_key(ns.api_key)
    if key is None:
        raise _CommandError(
            f"no API key: pass --api-key KEY or set {config.ENV_API_KEY}; for a local coordinator, "
            f"`make run` (`aitbc up`) starts one and saves a key in {config.aitbc_home()}"
        )
    return Client(ns.coordinator, key)


@_reports_errors
def _submit(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        job = client.submit_job(
            ns.prompt,
            ns.model,
            max_tokens=ns.max_tokens,
            temperature=ns.temperature,
            top_p=ns.top_p,
            stream=ns.stream,
            queue_if_unavailable=ns.queue,
            priority=ns.priority,
            max_price=ns.max_price,
            idempotency_key=ns.idempotency_key,
        )
        if not ns.stream:
            print(job.job_id)
            return 0
        # On stderr, so stdout stays pure output; the id lets a broken stream be resumed with `aitbc watch`.
        print(f"job {job.job_id}", file=sys.stderr)
        return _follow(client, job.job_id, from_seq=0, show_states=False)


@_reports_errors
def _watch(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        return _follow(client, ns.job_id, from_seq=ns.from_seq, show_states=True)


@_reports_errors
def _status(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        fields = client.get_job(ns.job_id).to_dict()
    _print_json({name: fields[name] for name in _STATUS_FIELDS})
    return 0


@_reports_errors
def _get(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        job = client.get_job(ns.job_id)
    _print_json(job.to_dict())
    return 0


@_reports_errors
def _jobs(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        page = client.list_jobs(ns.status, ns.limit)
    if ns.json:
        _print_json([job.to_dict() for job in page.jobs])
    else:
        print(_table(page.jobs))
    if page.next_page_token is not None:
        print("(more jobs than shown; raise --limit to see them)", file=sys.stderr)
    return 0


@_reports_errors
def _cancel(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        job = client.cancel_job(ns.job_id)
    print(f"{job.job_id}: {job.status} (completion tokens: {job.usage.completion_tokens})")
    return 0


def _follow(client: Client, job_id: str, *, from_seq: int, show_states: bool) -> int:
    """Print the job's tokens as they arrive; 0 once it completed, 1 (and the reason) if it failed or was canceled."""
    final: JobEvent | None = None
    wrote_text = False
    for event in client.stream(job_id, from_seq=from_seq):
        if event.kind == "tokens":
            sys.stdout.write(event.text)
            sys.stdout.flush()
            wrote_text = wrote_text or bool(event.text)
        elif event.is_final:
            final = event
        elif show_states:
            print(_describe_state(event), file=sys.stderr)
    if wrote_text:
        print()
    if final is not None:
        # Reported after the output's final newline, so a terminal shows it on a line of its own.
        if show_states:
            print(_describe_state(final), file=sys.stderr)
        status, error = final.status, final.error
    else:
        # A stream resumed past its last event ends without a state change; the job itself says how it ended.
        job = client.get_job(job_id)
        status, error = job.status, job.error
    if status == JobStatus.COMPLETED:
        return 0
    _error(f"job {job_id} {status}: {error or 'no reason given'}")
    return 1


def _describe_state(event: JobEvent) -> str:
    description = f"state: {event.status}"
    if event.miner_id is not None:
        description += f" on {event.miner_id} (attempt {event.attempt})"
    if event.error is not None:
        description += f": {event.error}"
    return description


@_reports_errors
def _models(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        models = client.list_models()
    header = ("MODEL", "ALIASES", "TIER", "CONTEXT", "PRICE IN/OUT PER 1K", "MINERS", "FREE SLOTS")
    _print_listing(models, header, _model_row, as_json=ns.json)
    return 0


def _model_row(model: dict[str, Any]) -> tuple[str, ...]:
    return (
        model["id"],
        ", ".join(model["aliases"]),
        str(model["min_tier"]),
        str(model["context_length"]),
        f"{format_credits(int(model['price_input_per_1k']))} / {format_credits(int(model['price_output_per_1k']))}",
        str(model["miners"]),
        str(model["free_slots"]),
    )


@_reports_errors
def _miners(ns: argparse.Namespace) -> int:
    with _open_client(ns) as client:
        miners = client.list_miners()
    header = ("MINER", "ONLINE", "REPUTATION", "MODELS", "TIER", "SLOTS FREE/MAX", "TOKENS/S", "LAST SEEN (UTC)")
    _print_listing(miners, header, _miner_row, as_json=ns.json)
    return 0


def _miner_row(miner: dict[str, Any]) -> tuple[str, ...]:
    return (
        miner["miner_id"],
        "yes" if miner["online"] else "no",
        str(miner["reputation"]["score"]),
        ", ".join(miner["models"]),
        str(miner["tier"]),
        f"{miner['free_slots']}/{miner['max_concurrency']}" if miner["online"] else "-",
        f"{miner['reputation']['tokens_per_second']:.1f}",
        miner.get("last_seen", "")[:19].replace("T", " "),
    )


def _print_listing(
    items: list[dict[str, Any]],
    header: tuple[str, ...],
    row: Callable[[dict[str, Any]], tuple[str, ...]],
    *,
    as_json: bool,
) -> None:
    """Print `items` as they came (JSON), or as a table: `header`, then one `row` per item."""
    if as_json:
        _print_json(items)
    else:
        print(_render_table(header, [row(item) for item in items]))


def _table(jobs: Iterable[Job]) -> str:
    header = ("JOB ID", "STATUS", "MODEL", "TOKENS", "CREATED (UTC)", "PROMPT")
    return _render_table(
        header,
        [
            (
                job.job_id,
                job.status.value,
                job.model,
                str(job.usage.completion_tokens),
                _short_time(job.created_at),
                _one_line(job.prompt, _PROMPT_COLUMN_WIDTH),
            )
            for job in jobs
        ],
    )


def _render_table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    rows = [header, *body]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _short_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
