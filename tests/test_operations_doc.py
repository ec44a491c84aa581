"""docs/operations.md lists every metric the coordinator and the gateway export, and every operations flag."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest

from aitbc.cli import build_parser
from aitbc.coordinator.observe import CoordinatorLoad
from aitbc.domain.states import JobState
from aitbc.services.metrics import CoordinatorMetrics
from gateway.metrics import GatewayMetrics

DOC = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
OPERATIONS_WORDS = ("tls", "metrics", "log-format", "ready")


def exported_names() -> list[str]:
    coordinator = CoordinatorMetrics()
    load = CoordinatorLoad(
        jobs=Counter({("m", JobState.PENDING): 1}), miners=Counter({"m": 1}), free_slots=Counter({"m": 1})
    )
    coordinator.bind(lambda: load)
    names = []
    for registry in (coordinator.registry, GatewayMetrics().registry):
        for family in registry.collect():
            names.append(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


@pytest.mark.parametrize("name", exported_names())
def test_every_metric_is_documented(name: str) -> None:
    assert f"`{name}`" in DOC


def operations_flags() -> list[tuple[str, str]]:
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    found = []
    for command in ("coordinator", "gateway", "miner", "up", "submit", "status"):
        subparser = commands.choices[command]
        subparser.add_deferred_arguments()  # the miner's and the gateway's options come with their packages
        for action in subparser._actions:
            for flag in action.option_strings:
                if any(word in flag for word in OPERATIONS_WORDS):
                    found.append((command, flag))
    return found


def test_the_operations_flags_are_found() -> None:
    assert ("gateway", "--ready-min-miners") in operations_flags()
    assert ("miner", "--tls-ca") in operations_flags()


@pytest.mark.parametrize(("command", "flag"), operations_flags())
def test_every_operations_flag_is_documented(command: str, flag: str) -> None:
    assert f"`{flag}" in DOC
