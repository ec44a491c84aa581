"""`aitbc coordinator`'s options for running as one of several replicas on PostgreSQL (docs/scaling.md)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from aitbc.coordinator.config import DEFAULT_REPLICA_LEASE, CoordinatorConfig


def add_replica_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--replica-lease",
        type=_positive,
        default=DEFAULT_REPLICA_LEASE,
        metavar="SECONDS",
        help="with --store postgresql://: a replica silent this long has its running jobs taken over by the"
        " others (default: %(default)g)",
    )


def with_replica_options(coordinator_config: CoordinatorConfig, ns: argparse.Namespace) -> CoordinatorConfig:
    return replace(coordinator_config, replica_lease=ns.replica_lease, advertise_address=ns.listen)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.5 and 3600 seconds, got {text}")
    return value
