"""The `aitbc` server commands and their options: coordinator, miner, up (the whole local stack), gateway.

What each command runs is in aitbc/cli/server_runners.py (coordinator, miner, gateway) and
aitbc/cli/local_stack.py (up). The miner and the gateway packages add their own options only when their
command is parsed, and load only in the commands that run them: every other command (`aitbc status`, for one)
starts without them (and without tenacity, uvicorn and starlette, which they import).
"""

from __future__ import annotations

import argparse

from aitbc import config
from aitbc.cli.command_parser import AddArguments, CommandParser, SubParsers
from aitbc.cli.coordinator_options import add_coordinator_tuning_arguments
from aitbc.cli.local_stack import run_stack
from aitbc.cli.server_options import add_coordinator_tls_arguments, add_home_argument, add_observability_arguments
from aitbc.cli.server_runners import run_coordinator, run_gateway, run_miner

_GRACE_HELP = "seconds running jobs get to finish on Ctrl-C or SIGTERM; those still running are requeued"


def register_server_commands(subparsers: SubParsers[CommandParser]) -> None:
    def add(name: str, about: str, arguments_from: AddArguments | None = None) -> CommandParser:
        parser: CommandParser = subparsers.add_parser(
            name, help=about, description=about, arguments_from=arguments_from
        )
        return parser

    coordinator = add("coordinator", "run the coordinator (gRPC) on the store in the data directory")
    coordinator.add_argument(
        "--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="gRPC address (default: %(default)s)"
    )
    coordinator.add_argument(
        "--default-model",
        default=config.DEFAULT_MODEL,
        metavar="MODEL",
        help="the model of jobs that name none: a catalog id or alias (default: %(default)s)",
    )
    add_home_argument(coordinator)
    coordinator.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="the store: postgresql://user@host:port/db (docs/postgres.md), sqlite:///PATH or a file path"
        " (default: the SQLite file in the data directory)",
    )
    add_private_webhooks_argument(coordinator)
    add_coordinator_tuning_arguments(coordinator)
    coordinator.add_argument(
        "--public-url",
        default=f"http://{config.DEFAULT_HTTP_ADDRESS}",
        metavar="URL",
        help="where clients reach the HTTP gateway: share links start with it (default: %(default)s)",
    )
    coordinator.add_argument(
        "--grace", type=float, default=config.SHUTDOWN_GRACE_SECONDS, help=f"{_GRACE_HELP} (default: %(default)g)"
    )
    add_coordinator_tls_arguments(coordinator)
    add_observability_arguments(coordinator)
    coordinator.set_defaults(handler=run_coordinator)

    miner = add("miner", "run a miner that connects to a coordinator", arguments_from=_add_miner_arguments)
    miner.set_defaults(handler=run_miner)

    up = add("up", "run the whole stack locally: coordinator, gateway and a miner (what `make run` starts)")
    up.add_argument(
        "--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="gRPC address (default: %(default)s)"
    )
    up.add_argument(
        "--http", default=config.DEFAULT_HTTP_ADDRESS, metavar="HOST:PORT", help="HTTP address (default: %(default)s)"
    )
    # The GPU backend needs options of its own; run it with `aitbc miner --backend exllamav2`.
    up.add_argument(
        "--backend", choices=["llama.cpp", "synthetic"], default="llama.cpp", help="the miner's (default: %(default)s)"
    )
    up.add_argument(
        "--model",
        metavar="PATH",
        help="llama.cpp: a GGUF file to serve, with --model-name (default: the bundled SmolLM2-135M-Instruct)",
    )
    up.add_argument(
        "--model-name",
        metavar="ID",
        help="llama.cpp: the catalog id or alias to serve the model as, e.g. llama3.2 (default: smollm2-135m-instruct)",
    )
    up.add_argument(
        "--tokens-per-second",
        type=float,
        metavar="R",
        help="synthetic: the made-up output's pace, 0 for unpaced (default: 50)",
    )
    up.add_argument(
        "--max-concurrency", type=int, default=1, metavar="N", help="the miner's jobs at once (default: %(default)s)"
    )
    up.add_argument(
        "--grace", type=float, default=config.SHUTDOWN_GRACE_SECONDS, help=f"{_GRACE_HELP} (default: %(default)g)"
    )
    add_home_argument(up)
    add_private_webhooks_argument(up)
    add_observability_arguments(up)
    up.set_defaults(handler=run_stack)

    gateway = add(
        "gateway",
        "run the HTTP gateway (REST, SSE, WebSocket, OpenAI API) in front of a coordinator",
        arguments_from=_add_gateway_arguments,
    )
    gateway.set_defaults(handler=run_gateway)


def _add_miner_arguments(parser: argparse.ArgumentParser) -> None:
    from miner.main import add_miner_arguments

    add_miner_arguments(parser)


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.main import add_gateway_arguments

    add_gateway_arguments(parser)


def add_private_webhooks_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-private-webhooks",
        action="store_true",
        help="let webhooks deliver to loopback and private addresses (a local receiver); refused by default",
    )
