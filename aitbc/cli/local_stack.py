"""`aitbc up` (and `make run`): the whole stack in one process, with the keys it mints and the banner it prints.

The coordinator, the HTTP gateway and a local miner share one event loop. The client and miner keys are saved
in the data directory and reused on the next start, as long as the store still knows them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aitbc import config
from aitbc.cli.account_commands import grant_starting_balance
from aitbc.cli.server_options import home_of
from aitbc.cli.server_runners import one_line, report_shutdown, say_stopping
from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.catalog_file import CatalogFileError, load_catalog
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.catalog import Catalog
from aitbc.domain.keys import Role, hash_key
from aitbc.key_files import KeyFileError, load_or_create_private_key
from aitbc.services.lifecycle import wait_for_shutdown_signal
from aitbc.services.server import start_coordinator
from aitbc.store.base import StoreUnavailableError
from aitbc.store.sqlite import SqliteStore

# One logger name for every server command: the one their log lines have always shown.
log = logging.getLogger(__name__)

LOCAL_MINER_ID = "local-miner"
# How long `aitbc up` waits for its own miner to connect before it announces the stack anyway.
MINER_CONNECT_TIMEOUT = 30.0


def run_stack(ns: argparse.Namespace) -> int:
    from miner.agent import CoordinatorRejectedError

    if ns.backend == "synthetic" and (ns.model or ns.model_name):
        print("aitbc up: error: --model and --model-name apply to the llama.cpp backend", file=sys.stderr)
        return 2
    if ns.model and not ns.model_name:
        print("aitbc up: error: --model needs --model-name: the catalog id or alias it is served as", file=sys.stderr)
        return 2
    if ns.backend != "synthetic" and ns.tokens_per_second is not None:
        print("aitbc up: error: --tokens-per-second applies to the synthetic backend", file=sys.stderr)
        return 2
    options: dict[str, object] = {"model": ns.model} if ns.model else {}
    if ns.model_name:
        options["model_name"] = ns.model_name
    if ns.tokens_per_second is not None:
        options["tokens_per_second"] = ns.tokens_per_second
    try:
        asyncio.run(_serve_stack(ns, options))
    except (
        OSError,
        ModuleNotFoundError,
        CoordinatorRejectedError,
        CatalogFileError,
        StoreUnavailableError,
        KeyFileError,
    ) as exc:
        print(f"aitbc up: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def served_default(catalog: Catalog, served: Sequence[str]) -> str:
    """The catalog id of the first model the local miner serves: what a job that names none should run on."""
    known = [model_id for name in served if (model_id := catalog.canonical(name)) is not None]
    # An unknown model makes the coordinator refuse the miner, which then says why.
    return known[0] if known else config.DEFAULT_MODEL


async def _serve_stack(ns: argparse.Namespace, backend_options: dict[str, object]) -> None:
    from gateway.main import EmbeddedGateway, GatewaySettings
    from miner.agent import MinerAgent
    from miner.backends.registry import create_backend
    from miner.config import MINER_SIGNING_KEY_FILE, MinerConfig

    home, grace = home_of(ns), ns.grace
    database = home / config.DATABASE_FILE
    catalog = load_catalog(home)
    client_key = await _reuse_or_mint_key(database, home / config.CLIENT_KEY_FILE, Role.CLIENT)
    await grant_starting_balance(database, client_key)
    miner_key = await _reuse_or_mint_key(database, home / config.MINER_KEY_FILE, Role.MINER)
    log.info("loading the %s backend", ns.backend)
    backend = await asyncio.to_thread(create_backend, ns.backend, backend_options)
    try:
        default_model = served_default(catalog, backend.models)
        signing_key = load_or_create_private_key(home / COORDINATOR_KEY_FILE)
        # Share links point at the gateway this command starts.
        coordinator_config = CoordinatorConfig(
            catalog=catalog,
            default_model=default_model,
            signing_key=signing_key,
            public_url=f"http://{ns.http}",
            allow_private_webhooks=ns.allow_private_webhooks,
        )
        running = await start_coordinator(database, ns.listen, coordinator_config, metrics_listen=ns.metrics_listen)
        miner_config = MinerConfig(
            coordinator=f"127.0.0.1:{running.port}",
            api_key=miner_key,
            miner_id=LOCAL_MINER_ID,
            max_concurrency=ns.max_concurrency,
            # The same grace as the coordinator's, so that what the miner's log says is what happens.
            drain_grace_seconds=grace,
            key_file=home / MINER_SIGNING_KEY_FILE,
        )
        agent = MinerAgent(miner_config, backend)
        miner_task = asyncio.create_task(agent.run(), name="local miner")
        gateway = EmbeddedGateway(
            f"127.0.0.1:{running.port}",
            ns.http,
            settings=GatewaySettings(access_log=ns.log_format == "json", log_format=ns.log_format),
        )
        try:
            await gateway.start()
        except OSError:
            agent.stop()
            await running.stop(0)
            raise
        # The banner invites a submit, which fails fast while no miner serves the model: wait for the miner.
        connected = asyncio.create_task(running.coordinator.wait_for_miner(LOCAL_MINER_ID, MINER_CONNECT_TIMEOUT))
        await asyncio.wait({connected, miner_task}, return_when=asyncio.FIRST_COMPLETED)
        stop = asyncio.create_task(wait_for_shutdown_signal())
        if not miner_task.done():
            # The port bound, which differs from the one asked for when that was 0.
            listening = f"{ns.listen.rpartition(':')[0]}:{running.port}"
            _print_banner(home, listening, ns.http, ns.backend, list(backend.models), default_model, client_key, grace)
            await asyncio.wait({stop, miner_task}, return_when=asyncio.FIRST_COMPLETED)
        if miner_task.done():
            stop.cancel()
            connected.cancel()
            log.error("the local miner stopped: %s", miner_task.exception() or "it returned")
        else:
            say_stopping(grace)
        # The local miner drains (finishes its jobs, then leaves) while the
        # coordinator waits for it before closing.
        await gateway.stop()
        draining = asyncio.create_task(agent.drain())
        report = await running.stop(grace)
        agent.stop()
        await draining
        with contextlib.suppress(Exception):
            await miner_task
        report_shutdown(report)
    finally:
        await backend.close()


async def _reuse_or_mint_key(database: Path, key_file: Path, role: Role) -> str:
    """The key saved in `key_file` if the store knows it, else a new one saved there (mode 0600)."""
    saved = _read_key(key_file)
    store = await SqliteStore.open(database)
    try:
        if saved and await store.principal_for(hash_key(saved)) is not None:
            return saved
        raw_key, _ = await create_api_key(store, role, datetime.now(UTC))
    finally:
        await store.close()
    _write_key(key_file, raw_key)
    return raw_key


# Key files are read and written once at start-up, before anything is served:
# blocking file calls are fine there.


def _read_key(key_file: Path) -> str | None:
    try:
        return key_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_key(key_file: Path, raw_key: str) -> None:
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_text(raw_key + "\n")


def _aitbc_command() -> str:
    """How to run this `aitbc` from the current directory: `.venv/bin/aitbc` after `make run`."""
    script = Path(sys.executable).parent / "aitbc"
    if not script.exists():
        return "aitbc"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def _print_banner(
    home: Path,
    listen: str,
    http: str,
    backend: str,
    models: list[str],
    default_model: str,
    client_key: str,
    grace: float,
) -> None:
    key_file = home / config.CLIENT_KEY_FILE
    aitbc = _aitbc_command()
    activate = f"\n  (or `source {Path(aitbc).parent}/activate` first, then just `aitbc`)" if "/" in aitbc else ""
    print(
        f"""
AITBC is running.
  coordinator (gRPC)  {listen}   store: {home / config.DATABASE_FILE}
  gateway (HTTP)      http://{http}   REST /v1/jobs, OpenAI /v1/chat/completions, /health, docs /docs
  web app             http://{http}/   (sign in by pasting the client API key below)
  miner               {LOCAL_MINER_ID}: {backend} serving {", ".join(models)}
  default model       {default_model} (jobs that name no model run on it)
  client API key      {client_key}
                      (saved in {key_file}; the aitbc CLI and SDK use it by default)

Submit a job from another terminal:
  {aitbc} submit "Explain machine learning in simple terms" --max-tokens 64 --stream{activate}
or over HTTP:
  curl -s http://{http}/v1/jobs -H "X-Api-Key: $(cat {key_file})" \\
       -d '{{"prompt": "Hello, world!", "params": {{"max_tokens": 50}}}}'

Ctrl-C stops everything: running jobs get up to {grace:g}s to finish, the rest resume on the next start.
""",
        flush=True,
    )
