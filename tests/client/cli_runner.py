"""Running the client verbs as the `aitbc` command would."""

from __future__ import annotations

import argparse

from aitbc.cli.client_commands import register_client_commands


def run_cli(*args: str) -> int:
    """Parse `args` with only the client verbs registered, as `aitbc` would, and run the handler."""
    parser = argparse.ArgumentParser(prog="aitbc")
    register_client_commands(parser.add_subparsers(required=True))
    ns = parser.parse_args(args)
    exit_code: int = ns.handler(ns)
    return exit_code
