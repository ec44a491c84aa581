"""The `aitbc` CLI's server commands: coordinator, miner, up (the whole local stack), gateway.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc

from aitbc import config
from aitbc.cli.account_commands import grant_starting_balance
from aitbc.cli.command_parser import AddArguments, CommandParser
from aitbc.cli.coordinator_options import add_coordinator_tuning_arguments, with_coordinator_tuning
from aitbc.cli.server_options import add_coordinator_tls_arguments, add_observability_arguments, server_credentials_from
from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.catalog_file import CatalogFileError, load_catalog
from aitbc.coordinator.engine import CoordinatorConfig, ShutdownReport
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.catalog import Catalog
from aitbc.domain.errors import AitbcError
from aitbc.domain.keys import Role, hash_key
from aitbc.key_files import KeyFileError, load_or_create_private_key
from aitbc.services.lifecycle import wait_for_shutdown_signal
from aitbc.services.server import start_coordinator
from aitbc.store.base import StoreUnavailableError
from aitbc.store.sqlite import SqliteStore
from aitbc.store.urls import StoreUrlError, redact
from aitbc.tls import TlsConfigError

log = logging.getLogger(__name__)

# argparse has no public name for the type add_subparsers() returns.
SubParsers = argparse._SubParsersAction

LOCAL_MINER_ID = "local-miner"
# How long `aitbc up` waits for its own miner to connect before it announces the stack anyway.
MINER_CONNECT_TIMEOUT = 30.0
_GRACE_HELP = "seconds running jobs get to finish on Ctrl-C or SIGTERM; those still running are requeued"


def register_server_commands(subparsers: SubParsers[CommandParser]) -> None:
    def add(name: str, about: str, arguments_from: AddArguments | None = None) -> CommandParser:
        parser: CommandParser = subparsers.add_parser(
            name, help=about, description=about, arguments_from=arguments_from
        )
        return parser

    coordinator = add("coordinator", "run the coordinator (gRPC) on the store in the data directory")
    coordinator.add_argument(
        "--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="gRPC address (default: %(default)s)"
    )
    coordinator.add_argument(
        "--default-model",
        default=config.DEFAULT_MODEL,
        metavar="MODEL",
        help="the model of jobs that name none: a catalog id or alias (default: %(default)s)",
    )
    add_home_argument(coordinator)
    coordinator.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="the store: postgresql://user@host:port/db (docs/postgres.md), sqlite:///PATH or a file path"
        " (default: the SQLite file in the data directory)",
    )
    add_private_webhooks_argument(coordinator)
    add_coordinator_tuning_arguments(coordinator)
    coordinator.add_argument(
        "--public-url",
        default=f"http://{config.DEFAULT_HTTP_ADDRESS}",
        metavar="URL",
        help="where clients reach the HTTP gateway: share links start with it (default: %(default)s)",
    )
    coordinator.add_argument(
        "--grace", type=float, default=config.SHUTDOWN_GRACE_SECONDS, help=f"{_GRACE_HELP} (default: %(default)g)"
    )
    add_coordinator_tls_arguments(coordinator)
    add_observability_arguments(coordinator)
    coordinator.set_defaults(handler=_run_coordinator)

    miner = add("miner", "run a miner that connects to a coordinator", arguments_from=_add_miner_arguments)
    miner.set_defaults(handler=_run_miner)

    up = add("up", "run the whole stack locally: coordinator, gateway and a miner (what `make run` starts)")
    up.add_argument(
        "--listen", default=config.DEFAULT_GRPC_ADDRESS, metavar="HOST:PORT", help="gRPC address (default: %(default)s)"
    )
    up.add_argument(
        "--http", default=config.DEFAULT_HTTP_ADDRESS, metavar="HOST:PORT", help="HTTP address (default: %(default)s)"
    )
    # The GPU backend needs options of its own; run it with `aitbc miner --backend exllamav2`.
    up.add_argument(
        "--backend", choices=["llama.cpp", "synthetic"], default="llama.cpp", help="the miner's (default: %(default)s)"
    )
    up.add_argument(
        "--model",
        metavar="PATH",
        help="llama.cpp: a GGUF file to serve, with --model-name (default: the bundled SmolLM2-135M-Instruct)",
    )
    up.add_argument(
        "--model-name",
        metavar="ID",
        help="llama.cpp: the catalog id or alias to serve the model as, e.g. llama3.2 (default: smollm2-135m-instruct)",
    )
    up.add_argument(
        "--tokens-per-second",
        type=float,
        metavar="R",
        help="synthetic: the made-up output's pace, 0 for unpaced (default: 50)",
    )
    up.add_argument(
        "--max-concurrency", type=int, default=1, metavar="N", help="the miner's jobs at once (default: %(default)s)"
    )
    up.add_argument(
        "--grace", type=float, default=config.SHUTDOWN_GRACE_SECONDS, help=f"{_GRACE_HELP} (default: %(default)g)"
    )
    add_home_argument(up)
    add_private_webhooks_argument(up)
    add_observability_arguments(up)
    up.set_defaults(handler=_run_stack)

    gateway = add(
        "gateway",
        "run the HTTP gateway (REST, SSE, WebSocket, OpenAI API) in front of a coordinator",
        arguments_from=_add_gateway_arguments,
    )
    gateway.set_defaults(handler=_run_gateway)


def _add_miner_arguments(parser: argparse.ArgumentParser) -> None:
    from miner.main import add_miner_arguments

    add_miner_arguments(parser)


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.main import add_gateway_arguments

    add_gateway_arguments(parser)


def add_private_webhooks_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-private-webhooks",
        action="store_true",
        help="let webhooks deliver to loopback and private addresses (a local receiver); refused by default",
    )


def add_home_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=None, help=f"data directory (default: ${config.ENV_HOME}, else ~/.aitbc)"
    )


def home_of(ns: argparse.Namespace) -> Path:
    home: Path = ns.home or config.aitbc_home()
    return home


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


def _run_coordinator(ns: argparse.Namespace) -> int:
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
            f"aitbc coordinator: error: {_one_line(StoreUnavailableError(f'cannot write {home}: {exc}'))}",
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
        print(f"aitbc coordinator: error: {_one_line(exc)}", file=sys.stderr)
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
    _say(f"stopping: running jobs get up to {grace:g}s to finish (press Ctrl-C again to stop at once)")
    _report_shutdown(await running.stop(grace))


def _say(line: str) -> None:
    print(line, flush=True)


def _report_shutdown(report: ShutdownReport) -> None:
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
        print(f"aitbc up: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _run_gateway(ns: argparse.Namespace) -> int:
    from gateway.main import serve_gateway, settings_from_args

    try:
        target, settings = settings_from_args(ns)
    except ValueError as exc:
        print(f"aitbc gateway: error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve_gateway(target, ns.listen, settings=settings))
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
            _say(f"stopping: running jobs get up to {grace:g}s to finish (press Ctrl-C again to stop at once)")
        # The local miner drains (finishes its jobs, then leaves) while the
        # coordinator waits for it before closing.
        await gateway.stop()
        draining = asyncio.create_task(agent.drain())
        report = await running.stop(grace)
        agent.stop()
        await draining
        with contextlib.suppress(Exception):
            await miner_task
        _report_shutdown(report)
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


def _one_line(error: Exception) -> str:
    """An error as one line; a store that cannot be written says where it is and what to do."""
    text = " ".join(str(error).split())
    if isinstance(error, StoreUnavailableError):
        text += "; free some disk space (or fix the file's permissions) and start again"
    return text
