"""`--help` everywhere: a one-line description for every command and the default of every option; `make help`."""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Iterator

import pytest

from aitbc import config
from aitbc.cli import build_parser
from aitbc.cli.command_parser import CommandParser
from miner.backends.synthetic import DEFAULT_TOKENS_PER_SECOND
from miner.config import MinerConfig

from .conftest import REPO


def commands(parser: argparse.ArgumentParser, path: str = "aitbc") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    if isinstance(parser, CommandParser):
        parser.add_deferred_arguments()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, f"{path} {name}")


ALL = list(commands(build_parser()))


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[path for path, _ in ALL])
def test_every_command_describes_itself_and_its_defaults(path: str, parser: argparse.ArgumentParser) -> None:
    assert parser.description, f"{path} has no description"
    assert "\n" not in parser.description.strip(), f"{path}: the description is not one line"
    for action in parser._actions:
        if action.default in (None, False, argparse.SUPPRESS) or isinstance(action, argparse._SubParsersAction):
            continue
        rendered = (action.help or "") % {"default": action.default}
        assert "default" in rendered, f"{path} {action.option_strings}: the help does not show its default"


def test_every_command_shows_its_description_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["up", "--help"], ["coordinator", "--help"], ["gateway", "--help"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"usage: aitbc {argv[0]}")
        description = lines[lines.index("") + 1]
        assert description.startswith("run "), description


def test_the_grace_is_one_number_everywhere() -> None:
    parser = build_parser()
    assert parser.parse_args(["up"]).grace == config.SHUTDOWN_GRACE_SECONDS
    assert parser.parse_args(["coordinator"]).grace == config.SHUTDOWN_GRACE_SECONDS
    assert parser.parse_args(["miner"]).drain_grace == config.SHUTDOWN_GRACE_SECONDS
    assert MinerConfig("host:1", "key").drain_grace_seconds == config.SHUTDOWN_GRACE_SECONDS


def test_the_synthetic_pace_help_tells_the_truth(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--help"])
    assert f"(default: {DEFAULT_TOKENS_PER_SECOND:g})" in " ".join(capsys.readouterr().out.split())


def test_make_help_lists_every_target() -> None:
    listed = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.MULTILINE)
    assert phony is not None
    for target in phony.group(1).split():
        assert re.search(rf"^  make {target} +\S", listed, re.MULTILINE), f"make help does not list {target}"
