"""The `aitbc` CLI's server commands: coordinator, miner, up (the whole local stack), gateway, keys.

The miner and the gateway packages load only in the commands that run them, and add their own options only
when their command is parsed: every other command (`aitbc status`, for one) starts without them (and without
tenacity, uvicorn and starlette, which they import).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from aitbc import config
from aitbc.cli.account_commands import grant_starting_balance
from aitbc.cli.command_parser import CommandParser
from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.catalog_file import CatalogFileError, load_catalog
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.keys import Principal, Role, hash_key
from aitbc.key_files import load_or_create_private_key
from aitbc.services.lifecycle import wait_for_shutdown_signal
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

# argparse has no public name for the type add_subparsers() returns.
SubParsers = argparse._SubParsersAction

LOCAL_MINER_ID = "local-miner"


def register_server_commands(subparsers: SubParsers[CommandParser]) -> None:
    coordinator = subparsers.add_parser("coordinator", help="run the coordinator (gRPC)")
    coordinator.add_argument(
        "--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="default: %(default)s"
    )
    _add_home_argument(coordinator)
    coordinator.add_argument(
        "--grace", type=float, default=10.0, help="seconds miners get to finish on shutdown (default: %(default)s)"
    )
    coordinator.set_defaults(handler=_run_coordinator)

    miner = subparsers.add_parser(
        "miner", help="run a miner that connects to a coordinator", arguments_from=_add_miner_arguments
    )
    miner.set_defaults(handler=_run_miner)

    up = subparsers.add_parser(
        "up", help="run the whole stack locally: coordinator and a miner (what `make run` starts)"
    )
    up.add_argument("--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="gRPC address")
    up.add_argument("--http", default=config.DEFAULT_HTTP_ADDRESS, metavar="HOST:PORT", help="HTTP gateway address")
    # The GPU backend needs options of its own; run it with `aitbc miner --backend exllamav2`.
    up.add_argument("--backend", choices=["llama.cpp", "synthetic"], default="llama.cpp", help="default: %(default)s")
    up.add_argument("--model", metavar="PATH", help="llama.cpp: a GGUF file (default: SmolLM2-135M-Instruct)")
    up.add_argument("--max-concurrency", type=int, default=1, metavar="N", help="the miner's jobs at once")
    up.add_argument("--grace", type=float, default=10.0, help="seconds jobs get to finish on Ctrl-C")
    _add_home_argument(up)
    up.set_defaults(handler=_run_stack)

    gateway = subparsers.add_parser(
        "gateway",
        help="run the HTTP gateway (REST, SSE, WebSocket, OpenAI API)",
        arguments_from=_add_gateway_arguments,
    )
    gateway.set_defaults(handler=_run_gateway)

    keys = subparsers.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = key_commands.add_parser(
        "create", help="create an API key in the store under AITBC_HOME (no coordinator needed)"
    )
    create.add_argument("--role", choices=[role.value for role in Role], default=Role.CLIENT.value)
    create.add_argument("--owner", help="account the key acts for; default: a new account of its own")
    _add_home_argument(create)
    create.set_defaults(handler=_create_key)


def _add_miner_arguments(parser: argparse.ArgumentParser) -> None:
    from miner.main import add_miner_arguments

    add_miner_arguments(parser)


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.main import add_gateway_arguments

    add_gateway_arguments(parser)


def _add_home_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=None, help=f"data directory (default: ${config.ENV_HOME}, else ~/.aitbc)"
    )


def _home(ns: argparse.Namespace) -> Path:
    home: Path = ns.home or config.aitbc_home()
    return home


def _create_key(ns: argparse.Namespace) -> int:
    raw_key, principal = asyncio.run(mint_key(_home(ns) / config.DATABASE_FILE, Role(ns.role), ns.owner))
    print(raw_key)
    print(f"created {principal.role} key {principal.key_id} for account {principal.owner_id}", file=sys.stderr)
    return 0


async def mint_key(database: Path, role: Role, owner: str | None = None) -> tuple[str, Principal]:
    store = await SqliteStore.open(database)
    try:
        return await create_api_key(store, role, datetime.now(UTC), owner)
    finally:
        await store.close()


def _coordinator_config(home: Path) -> CoordinatorConfig:
    signing_key = load_or_create_private_key(home / COORDINATOR_KEY_FILE)
    return CoordinatorConfig(catalog=load_catalog(home), signing_key=signing_key)


def _run_coordinator(ns: argparse.Namespace) -> int:
    home = _home(ns)
    try:
        coordinator_config = _coordinator_config(home)
    except CatalogFileError as exc:
        print(f"aitbc coordinator: error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve_coordinator(home / config.DATABASE_FILE, ns.listen, ns.grace, coordinator_config))
    return 0


async def _serve_coordinator(database: Path, listen: str, grace: float, coordinator_config: CoordinatorConfig) -> None:
    running = await start_coordinator(database, listen, coordinator_config)
    log.info("coordinator serving on %s (store %s)", listen, database)
    await wait_for_shutdown_signal()
    log.info("draining miners for up to %gs", grace)
    await running.stop(grace)


def _run_miner(ns: argparse.Namespace) -> int:
    from miner.agent import CoordinatorRejectedError
    from miner.main import config_from_args, run_miner
    from miner.model_files import ModelFileNotFoundError

    try:
        miner_config, backend_name, backend_options = config_from_args(ns)
    except ValueError as exc:
        print(f"aitbc miner: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_miner(miner_config, backend_name, backend_options))
    except (CoordinatorRejectedError, ModelFileNotFoundError, ModuleNotFoundError, ValueError) as exc:
        # ValueError: a model or option the backend refuses at load time.
        print(f"aitbc miner: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_stack(ns: argparse.Namespace) -> int:
    from miner.agent import CoordinatorRejectedError

    options: dict[str, object] = {"model": ns.model} if ns.model else {}
    try:
        asyncio.run(_serve_stack(_home(ns), ns.listen, ns.http, ns.backend, options, ns.max_concurrency, ns.grace))
    except (OSError, ModuleNotFoundError, CoordinatorRejectedError, CatalogFileError) as exc:
        print(f"aitbc up: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_gateway(ns: argparse.Namespace) -> int:
    from gateway.main import serve_gateway

    address = config.coordinator_address(ns.coordinator)
    asyncio.run(serve_gateway(address, ns.listen, max_body_bytes=ns.max_body_bytes))
    return 0


async def _serve_stack(
    home: Path,
    listen: str,
    http: str,
    backend_name: str,
    backend_options: dict[str, object],
    slots: int,
    grace: float,
) -> None:
    from gateway.main import EmbeddedGateway
    from miner.agent import MinerAgent
    from miner.backends.registry import create_backend
    from miner.config import MinerConfig

    database = home / config.DATABASE_FILE
    client_key = await _reuse_or_mint_key(database, home / config.CLIENT_KEY_FILE, Role.CLIENT)
    await grant_starting_balance(database, client_key)
    miner_key = await _reuse_or_mint_key(database, home / config.MINER_KEY_FILE, Role.MINER)
    log.info("loading the %s backend", backend_name)
    backend = await asyncio.to_thread(create_backend, backend_name, backend_options)
    try:
        running = await _start_coordinator_or_explain(database, listen, _coordinator_config(home))
        miner_config = MinerConfig(
            coordinator=f"127.0.0.1:{running.port}", api_key=miner_key, miner_id=LOCAL_MINER_ID, max_concurrency=slots
        )
        agent = MinerAgent(miner_config, backend)
        miner_task = asyncio.create_task(agent.run(), name="local miner")
        gateway = EmbeddedGateway(f"127.0.0.1:{running.port}", http)
        try:
            await gateway.start()
        except OSError:
            agent.stop()
            await running.stop(0)
            raise
        _print_banner(home, listen, http, backend_name, list(backend.models), client_key)
        stop = asyncio.create_task(wait_for_shutdown_signal())
        await asyncio.wait({stop, miner_task}, return_when=asyncio.FIRST_COMPLETED)
        if miner_task.done():
            stop.cancel()
            log.error("the local miner stopped: %s", miner_task.exception() or "it returned")
        else:
            log.info("letting running jobs finish for up to %gs", grace)
        # The local miner drains (finishes its jobs, then leaves) while the
        # coordinator waits for it before closing.
        await gateway.stop()
        draining = asyncio.create_task(agent.drain())
        await running.stop(grace)
        agent.stop()
        await draining
        with contextlib.suppress(Exception):
            await miner_task
    finally:
        await backend.close()


async def _start_coordinator_or_explain(
    database: Path, listen: str, coordinator_config: CoordinatorConfig
) -> RunningCoordinator:
    try:
        return await start_coordinator(database, listen, coordinator_config)
    except RuntimeError as exc:
        # grpc reports a taken port as a RuntimeError about binding.
        raise OSError(f"cannot listen on {listen} ({exc}); is another coordinator running? Try --listen") from exc


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


def _print_banner(home: Path, listen: str, http: str, backend: str, models: list[str], client_key: str) -> None:
    model = models[0] if models else "MODEL"
    print(
        f"""
AITBC is running.
  coordinator (gRPC)  {listen}   store: {home / config.DATABASE_FILE}
  gateway (HTTP)      http://{http}   REST /v1/jobs, OpenAI /v1/chat/completions, docs /docs
  miner               {LOCAL_MINER_ID}: {backend} serving {", ".join(models)}
  client API key      {client_key}
                      (saved in {home / config.CLIENT_KEY_FILE}; the aitbc CLI and SDK use it by default)

Submit a job from another terminal:
  .venv/bin/aitbc submit "Explain machine learning in simple terms" --model {model} --max-tokens 64 --stream
or over HTTP:
  curl -s http://{http}/v1/jobs -H "X-Api-Key: $(cat {home / config.CLIENT_KEY_FILE})" \\
       -d '{{"prompt": "Hello, world!", "model": "{model}", "params": {{"max_tokens": 50}}}}'

Ctrl-C stops everything (running jobs get to finish first).
""",
        flush=True,
    )
