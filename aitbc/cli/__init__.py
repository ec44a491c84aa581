"""The `aitbc` command line: server commands (coordinator, miner, up, keys) and client verbs."""

from __future__ import annotations

import argparse
import sys

from aitbc import __version__
from aitbc.cli.account_commands import register_account_commands
from aitbc.cli.client_commands import register_client_commands
from aitbc.cli.command_parser import CommandParser
from aitbc.cli.completion import register_completion_command
from aitbc.cli.explorer_commands import register_explorer_commands
from aitbc.cli.key_commands import register_key_commands
from aitbc.cli.ledger_commands import register_ledger_commands
from aitbc.cli.receipt_commands import register_receipt_commands
from aitbc.cli.server_commands import register_server_commands
from aitbc.cli.webhook_commands import register_webhook_commands
from aitbc.logs import configure_logging
from aitbc.targets import TargetError
from aitbc.tls import TlsConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aitbc", description="AITBC: submit AI inference jobs, run a coordinator, run a miner."
    )
    parser.add_argument("--version", action="version", version=f"aitbc {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="what the server commands log to stderr (default: %(default)s)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=CommandParser)
    register_server_commands(subparsers)
    register_key_commands(subparsers)
    register_client_commands(subparsers)
    register_completion_command(subparsers)
    register_account_commands(subparsers)
    register_receipt_commands(subparsers)
    register_ledger_commands(subparsers)
    register_explorer_commands(subparsers)
    register_webhook_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    configure_logging(ns.log_level, getattr(ns, "log_format", "text"))
    try:
        code: int = ns.handler(ns)
    except (TlsConfigError, TargetError) as problem:
        # A TLS file named on the command line that cannot be read, options that do not fit together, or a
        # coordinator list with an entry that is no address.
        print(f"aitbc: error: {problem}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
