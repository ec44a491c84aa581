"""The whole `aitbc` parser: the miner's and the gateway's options, which they add only when parsed."""

from __future__ import annotations

import argparse

import pytest

from aitbc.cli import build_parser
from aitbc.cli.command_parser import CommandParser
from aitbc.cli.server_runners import run_gateway, run_miner


def test_miner_options_come_from_the_miner() -> None:
    ns = build_parser().parse_args(["miner", "--backend", "synthetic", "--max-concurrency", "3"])
    assert (ns.backend, ns.max_concurrency, ns.coordinator, ns.model) == ("synthetic", 3, None, None)
    assert ns.handler is run_miner


def test_gateway_options_come_from_the_gateway() -> None:
    ns = build_parser().parse_args(["gateway", "--listen", "0.0.0.0:9000"])
    assert (ns.coordinator, ns.listen) == (None, "0.0.0.0:9000")
    assert ns.handler is run_gateway


def test_miner_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["miner", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: aitbc miner")
    assert "--backend {synthetic,llama.cpp,exllamav2}" in out


@pytest.mark.parametrize(
    "argv", [["miner", "--backend", "no-such-backend"], ["gateway", "--no-such-option"], ["miner", "--listen", "x"]]
)
def test_bad_deferred_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2
    assert "usage: aitbc" in capsys.readouterr().err


def test_deferred_arguments_are_added_once() -> None:
    added: list[argparse.ArgumentParser] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        added.append(parser)
        parser.add_argument("--size", type=int, default=1)

    parser = CommandParser(prog="cmd", arguments_from=add_arguments)
    assert added == []
    assert parser.parse_args(["--size", "2"]).size == 2
    assert parser.parse_args([]).size == 1
    assert added == [parser]
