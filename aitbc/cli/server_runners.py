"""What `aitbc coordinator`, `aitbc miner` and `aitbc gateway` run, and how a coordinator reports its stop.

`aitbc up` (aitbc/cli/local_stack.py) reports its stop and its errors the same way, with the helpers here.
The miner and the gateway packages are imported inside the commands that run them, never at module level.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import grpc

from aitbc import config
from aitbc.cli.coordinator_options import with_coordinator_tuning
from aitbc.cli.server_options import home_of, server_credentials_from
from aitbc.coordinator.catalog_file import CatalogFileError, load_catalog
from aitbc.coordinator.engine import CoordinatorConfig, ShutdownReport
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.catalog import Catalog
from aitbc.domain.errors import AitbcError
from aitbc.key_files import KeyFileError, load_or_create_private_key
from aitbc.services.lifecycle import wait_for_shutdown_signal
from aitbc.services.server import start_coordinator
from aitbc.store.base import StoreUnavailableError
from aitbc.store.urls import StoreUrlError, redact
from aitbc.tls import TlsConfigError

# One logger name for every server command: the one their log lines have always shown.
log = logging.getLogger(__name__)


def _coordinator_config(
    catalog: Catalog, default_model: str, home: Path, public_url: str, *, allow_private_webhooks: bool = False
) -> CoordinatorConfig:
    """The coordinator's settings; ValueError when the default model is not in the catalog."""
    try:
        entry = catalog.resolve(default_model)
    except AitbcError as error:
        raise ValueError(f"--default-model: {error.message.removeprefix('model: ')}") from None
    # The key that signs receipts and blocks: made once, kept in AITBC_HOME (mode 0600).
    signing_key = load_or_create_private_key(home / COORDINATOR_KEY_FILE)
    return CoordinatorConfig(
        catalog=catalog,
        default_model=entry.id,
        signing_key=signing_key,
        public_url=public_url,
        allow_private_webhooks=allow_private_webhooks,
    )


def run_coordinator(ns: argparse.Namespace) -> int:
    home = home_of(ns)
    try:
        coordinator_config = _coordinator_config(
            load_catalog(home),
            ns.default_model,
            home,
            ns.public_url,
            allow_private_webhooks=ns.allow_private_webhooks,
        )
    except (CatalogFileError, KeyFileError, ValueError) as exc:
        print(f"aitbc coordinator: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A full disk or a read-only home: the signing key cannot be made, so neither could the store.
        print(
            f"aitbc coordinator: error: {one_line(StoreUnavailableError(f'cannot write {home}: {exc}'))}",
            file=sys.stderr,
        )
        return 1
    try:
        credentials = server_credentials_from(ns)
    except TlsConfigError as exc:
        print(f"aitbc coordinator: error: {exc}", file=sys.stderr)
        return 2
    serve = _serve_coordinator(
        ns.store or home / config.DATABASE_FILE,
        ns.listen,
        ns.grace,
        with_coordinator_tuning(coordinator_config, ns),
        credentials=credentials,
        metrics_listen=ns.metrics_listen,
    )
    try:
        asyncio.run(serve)
    except StoreUrlError as exc:
        print(f"aitbc coordinator: error: --store: {exc}", file=sys.stderr)
        return 2
    except (OSError, StoreUnavailableError) as exc:
        print(f"aitbc coordinator: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


async def _serve_coordinator(
    database: Path | str,
    listen: str,
    grace: float,
    coordinator_config: CoordinatorConfig,
    *,
    credentials: grpc.ServerCredentials | None = None,
    metrics_listen: str | None = None,
) -> None:
    running = await start_coordinator(
        database, listen, coordinator_config, credentials=credentials, metrics_listen=metrics_listen
    )
    log.info("coordinator serving on %s (store %s)", listen, redact(str(database)))
    await wait_for_shutdown_signal()
    say_stopping(grace)
    report_shutdown(await running.stop(grace))


def _say(line: str) -> None:
    print(line, flush=True)


def say_stopping(grace: float) -> None:
    """What a server command prints when a shutdown signal arrives."""
    _say(f"stopping: running jobs get up to {grace:g}s to finish (press Ctrl-C again to stop at once)")


def report_shutdown(report: ShutdownReport) -> None:
    """What became of unfinished jobs (every one is stored and resumes on the next start), then a last line."""
    if report.requeued:
        them = "it resumes" if report.requeued == 1 else "they resume"
        _say(f"{_jobs(report.requeued)} requeued; {them} on the next start")
    if report.queued:
        verb = "waits" if report.queued == 1 else "wait"
        _say(f"{_jobs(report.queued, 'queued ')} {verb} for the next start")
    _say("stopped")


def _jobs(count: int, kind: str = "") -> str:
    return f"{count} {kind}job{'' if count == 1 else 's'}"


def one_line(error: Exception) -> str:
    """An error as one line; a store that cannot be written says where it is and what to do."""
    text = " ".join(str(error).split())
    if isinstance(error, StoreUnavailableError):
        text += "; free some disk space (or fix the file's permissions) and start again"
    return text


def run_miner(ns: argparse.Namespace) -> int:
    from miner.agent import CoordinatorRejectedError
    from miner.main import config_from_args
    from miner.main import run_miner as run_miner_agent
    from miner.model_files import ModelFileNotFoundError

    try:
        miner_config, backend_name, backend_options = config_from_args(ns)
    except ValueError as exc:
        print(f"aitbc miner: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_miner_agent(miner_config, backend_name, backend_options))
    except (CoordinatorRejectedError, ModelFileNotFoundError, ModuleNotFoundError, ValueError) as exc:
        # ValueError: a model or option the backend refuses at load time.
        print(f"aitbc miner: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_gateway(ns: argparse.Namespace) -> int:
    from gateway.main import serve_gateway, settings_from_args

    try:
        target, settings = settings_from_args(ns)
    except ValueError as exc:
        print(f"aitbc gateway: error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve_gateway(target, ns.listen, settings=settings))
    return 0
