"""The parser class of `aitbc` commands: one whose options may come from a package loaded only on use."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

AddArguments = Callable[[argparse.ArgumentParser], None]
# argparse has no public name for the type add_subparsers() returns.
SubParsers = argparse._SubParsersAction


class CommandParser(argparse.ArgumentParser):
    """An `aitbc` command's parser.

    `arguments_from` adds the command's options the first time the command is parsed (including for
    `--help`). The miner and the gateway define their own options; deferring them keeps those packages,
    and what they import, out of every other command.
    """

    def __init__(self, *args: Any, arguments_from: AddArguments | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arguments_from = arguments_from

    def add_deferred_arguments(self) -> None:
        """Add the command's deferred options now (once), for what lists every option (shell completion)."""
        if self._arguments_from is not None:
            add_arguments, self._arguments_from = self._arguments_from, None
            add_arguments(self)

    # argparse parses a chosen subcommand with this method, so every path to the options passes here.
    def parse_known_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:
        self.add_deferred_arguments()
        return super().parse_known_args(args, namespace)
