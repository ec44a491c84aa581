"""`aitbc coordinator`'s tuning options: queue bounds, and the lease of a replica on PostgreSQL (docs/scaling.md)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from aitbc.coordinator.config import DEFAULT_REPLICA_LEASE, CoordinatorConfig

MAX_QUEUE_BOUND = 10_000_000  # a typo of a few zeros, not a queue anyone means


def add_coordinator_tuning_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CoordinatorConfig()
    parser.add_argument(
        "--max-queued-per-client",
        type=_queue_bound,
        default=defaults.max_queued_per_client,
        metavar="N",
        help="jobs one client may have waiting for a miner; past it SubmitJob answers RESOURCE_EXHAUSTED with"
        " a retry delay. Replicas count every replica's queue (default: %(default)d)",
    )
    parser.add_argument(
        "--max-queued-total",
        type=_queue_bound,
        default=defaults.max_queued_total,
        metavar="N",
        help="jobs waiting for a miner in all (default: %(default)d)",
    )
    parser.add_argument(
        "--replica-lease",
        type=_positive,
        default=DEFAULT_REPLICA_LEASE,
        metavar="SECONDS",
        help="with --store postgresql://: a replica silent this long has its running jobs taken over by the"
        " others (default: %(default)g)",
    )


def with_coordinator_tuning(coordinator_config: CoordinatorConfig, ns: argparse.Namespace) -> CoordinatorConfig:
    return replace(
        coordinator_config,
        max_queued_per_client=ns.max_queued_per_client,
        max_queued_total=ns.max_queued_total,
        replica_lease=ns.replica_lease,
        advertise_address=ns.listen,
    )


def _queue_bound(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of jobs: {text!r}") from None
    if not 1 <= value <= MAX_QUEUE_BOUND:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_QUEUE_BOUND:,} jobs, got {text}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.5 and 3600 seconds, got {text}")
    return value
