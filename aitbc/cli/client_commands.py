"""The `aitbc` CLI's client verbs: submit, status, watch, jobs, get, cancel, models, miners.

Each job verb exists twice: in the short form of the seed's job-submission guide (`aitbc status JOB_ID`) and
in the long form of its job-status guide (`aitbc client status --job-id JOB_ID`); both share one handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from aitbc import config
from aitbc.cli.follow import follow
from aitbc.cli.output import jobs_table, note, print_json, print_listing, rest_shape, short_rfc3339
from aitbc.cli.reporting import CommandError, Handler, reports_errors
from aitbc.cli.tls_options import add_tls_options, sdk_client
from aitbc.client import AitbcApiError, Client, JobStatus
from aitbc.domain.errors import AitbcError
from aitbc.domain.money import format_credits, parse_credits

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
# `aitbc submit -` reads the prompt from stdin, as many Unix tools read a file named "-".
STDIN = "-"


def register_client_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    """Add the client verbs to the `aitbc` parser, plus `aitbc client VERB` with `--job-id` options."""
    _add_verbs(subparsers, long_form=False)
    about = "job commands in the long form of the seed documents: aitbc client status --job-id ID"
    client = subparsers.add_parser("client", help=about, description=about)
    verbs = client.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_verbs(verbs, long_form=True)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
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
    add_tls_options(parser)


def _add_verbs(
    subparsers: argparse._SubParsersAction[ParserT],
    *,
    long_form: bool,
) -> None:
    def add(name: str, help_text: str, handler: Handler, *, aliases: Iterable[str] = ()) -> ParserT:
        parser = subparsers.add_parser(name, aliases=list(aliases), help=help_text, description=help_text)
        add_connection_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    def add_job_id(parser: argparse.ArgumentParser) -> None:
        if long_form:
            parser.add_argument("--job-id", required=True, metavar="JOB_ID")
        else:
            parser.add_argument("job_id", metavar="JOB_ID")

    submit = add("submit", "queue a job and print its id, or stream its output with --stream", _submit)
    submit.add_argument("prompt", metavar="PROMPT", help=f"the instruction; {STDIN} reads it from stdin")
    submit.add_argument(
        "--model", help="model id or alias, see `aitbc models` (default: the coordinator's default model)"
    )
    submit.add_argument("--max-tokens", type=int, metavar="N", help="tokens to generate (default: 256)")
    submit.add_argument("--temperature", type=float, metavar="T", help="0.0 to 2.0, 0 is greedy (default: 0.7)")
    submit.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling (default: 0.9)")
    submit.add_argument(
        "--stream", action="store_true", help="print the output as it is generated; Ctrl-C cancels the job"
    )
    submit.add_argument(
        "--detach",
        action="store_true",
        help="with --stream: Ctrl-C stops following but leaves the job running (default: Ctrl-C cancels it)",
    )
    submit.add_argument(
        "--queue",
        action="store_true",
        help="wait in the queue when no online miner can run the job now (default: fail with NO_ELIGIBLE_MINER)",
    )
    submit.add_argument("--priority", choices=["high", "normal", "low"], help="scheduling class (default: normal)")
    submit.add_argument(
        "--max-price",
        type=_credits,
        metavar="CREDITS",
        help="the most the job may cost in AIT credits, up to 6 decimals (default: any)",
    )
    submit.add_argument(
        "--idempotency-key", metavar="KEY", help="retries with the same key return the same job (default: none)"
    )

    add_job_id(add("status", "print a job's status as JSON", _status))

    watch = add("watch", "print a job's output as it is generated; its states and queue place go to stderr", _watch)
    add_job_id(watch)
    watch.add_argument(
        "--from-seq",
        type=int,
        default=0,
        metavar="N",
        help="resume from event N, the last one seen + 1 (default: %(default)s, from the start)",
    )

    list_name, list_aliases = ("list", ["jobs"]) if long_form else ("jobs", [])
    jobs = add(list_name, "list your jobs, newest first", _jobs, aliases=list_aliases)
    jobs.add_argument(
        "--status", type=JobStatus, choices=list(JobStatus), help="only jobs in this state (default: all)"
    )
    jobs.add_argument("--limit", type=int, metavar="N", help="at most N jobs (default: 50)")
    jobs.add_argument("--json", action="store_true", help="print JSON instead of a table")

    add_job_id(add("get", "print a job, including its output, as JSON", _get))
    add_job_id(add("cancel", "cancel a job and print the tokens it produced", _cancel))
    if not long_form:
        models = add("models", "the model catalog, the default model, and what online miners serve", _models)
        models.add_argument("--json", action="store_true", help="print JSON instead of a table")
        miners = add("miners", "miners the coordinator knows, with their reputation", _miners)
        miners.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _credits(text: str) -> int:
    """µcr from a credit amount on the command line ("0.25"), so no float reaches the wire."""
    try:
        return parse_credits(text, field="--max-price")
    except AitbcError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def open_client(ns: argparse.Namespace) -> Client:
    key = config.api_key(ns.api_key)
    if key is None:
        raise CommandError(
            f"no API key: pass --api-key KEY or set {config.ENV_API_KEY}; for a local coordinator, "
            f"`make run` (`aitbc up`) starts one and saves a key in {config.aitbc_home()}"
        )
    return sdk_client(ns, key)


def _prompt(ns: argparse.Namespace) -> str:
    prompt: str = ns.prompt
    if prompt != STDIN:
        return prompt
    if sys.stdin.isatty():
        note("reading the prompt from stdin; end it with Ctrl-D")
    text = sys.stdin.read().rstrip("\n")
    if not text.strip():
        raise CommandError("the prompt read from stdin is empty")
    return text


@reports_errors
def _submit(ns: argparse.Namespace) -> int:
    prompt = _prompt(ns)
    with open_client(ns) as client:
        job = client.submit_job(
            prompt,
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
        note(f"job {job.job_id} on {job.model}")
        try:
            return follow(client, job.job_id, from_seq=0, show_states=False)
        except KeyboardInterrupt:
            return _interrupted(client, job.job_id, detach=ns.detach)


def _interrupted(client: Client, job_id: str, *, detach: bool) -> int:
    """Ctrl-C while streaming a submitted job: cancel it (as Ollama does), unless the user asked to detach."""
    if detach:
        note(f"stopped following job {job_id}; it keeps running: `aitbc watch {job_id}` follows it again")
        return 130
    try:
        job = client.cancel_job(job_id)
    except AitbcApiError as failure:
        if failure.reason != "JOB_NOT_CANCELABLE":
            raise
        note(f"job {job_id} had already finished: {failure.problem}")
        return 130
    note(
        f"canceled job {job_id} (Ctrl-C) after {job.usage.completion_tokens} tokens;"
        " pass --detach to leave a job running when you stop following it"
    )
    return 130


@reports_errors
def _watch(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        return follow(client, ns.job_id, from_seq=ns.from_seq, show_states=True)


@reports_errors
def _status(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        fields = rest_shape(client.get_job(ns.job_id).to_dict())
    print_json({name: fields[name] for name in _STATUS_FIELDS if name in fields})
    return 0


@reports_errors
def _get(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        job = client.get_job(ns.job_id)
    print_json(rest_shape(job.to_dict()))
    return 0


@reports_errors
def _jobs(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        page = client.list_jobs(ns.status, ns.limit)
    if ns.json:
        print_json([rest_shape(job.to_dict()) for job in page.jobs])
    else:
        print(jobs_table(page.jobs))
    if page.next_page_token is not None:
        note("(more jobs than shown; raise --limit to see them)")
    return 0


@reports_errors
def _cancel(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        job = client.cancel_job(ns.job_id)
    print(f"{job.job_id}: {job.status} (completion tokens: {job.usage.completion_tokens})")
    return 0


@reports_errors
def _models(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        models = client.list_models()
    header = ("MODEL", "DEFAULT", "ALIASES", "TIER", "CONTEXT", "PRICE IN/OUT PER 1K", "MINERS", "FREE SLOTS")
    print_listing(models, header, _model_row, as_json=ns.json)
    return 0


def _model_row(model: dict[str, Any]) -> tuple[str, ...]:
    return (
        model["id"],
        "yes" if model["is_default"] else "",
        ", ".join(model["aliases"]),
        str(model["min_tier"]),
        str(model["context_length"]),
        f"{format_credits(int(model['price_input_per_1k']))} / {format_credits(int(model['price_output_per_1k']))}",
        str(model["miners"]),
        str(model["free_slots"]),
    )


@reports_errors
def _miners(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        miners = client.list_miners()
    header = ("MINER", "ONLINE", "REPUTATION", "MODELS", "TIER", "SLOTS FREE/MAX", "TOKENS/S", "LAST SEEN (UTC)")
    print_listing(miners, header, _miner_row, as_json=ns.json)
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
        short_rfc3339(miner.get("last_seen")),
    )
