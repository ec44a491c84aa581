"""`aitbc miner`: command-line options, and running an agent until a signal drains it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aitbc.config import (
    DEFAULT_GRPC_ADDRESS,
    ENV_COORDINATOR,
    ENV_MINER_API_KEY,
    MINER_KEY_FILE,
    aitbc_home,
    coordinator_address,
    miner_api_key,
)
from aitbc.logs import add_log_format_argument
from aitbc.tls import add_client_tls_arguments, client_tls_from_args
from miner.agent import MinerAgent
from miner.backends.exllamav2_settings import CACHE_QUANTS, DEFAULT_MAX_SEQ_LEN
from miner.backends.registry import BACKEND_NAMES, create_backend
from miner.backends.synthetic import DEFAULT_TOKENS_PER_SECOND
from miner.config import DEFAULT_DRAIN_GRACE_SECONDS, MINER_SIGNING_KEY_FILE, MinerConfig, default_miner_id
from miner.model_files import SMOLLM2_MODEL_ID

log = logging.getLogger(__name__)

# Without a name, a GGUF file would be advertised as the bundled model's id: a lie to every client.
GGUF_NEEDS_A_NAME = (
    "--model with a GGUF file needs --model-name: the catalog id or alias it is served as (e.g. llama3.2)"
)


def add_miner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help=f"the coordinator's gRPC address; grpcs://HOST:PORT for TLS (default: ${ENV_COORDINATOR}, else"
        f" {DEFAULT_GRPC_ADDRESS})",
    )
    parser.add_argument(
        "--api-key",
        help=f"a key with the miner role (default: ${ENV_MINER_API_KEY}, else {MINER_KEY_FILE} that `aitbc up` saved)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="llama.cpp",
        help="inference backend; synthetic makes up text for tests and benchmarks (default: %(default)s)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH_OR_NAME",
        help=f"llama.cpp: a GGUF file (with --model-name), or {SMOLLM2_MODEL_ID} (the default, installed by"
        " `make install`)",
    )
    parser.add_argument(
        "--model-name",
        metavar="ID",
        help="the catalog id or alias to advertise the model as, e.g. llama3.2; required with a GGUF file"
        f" (default: {SMOLLM2_MODEL_ID} for llama.cpp, synthetic for synthetic, the folder's name for exllamav2)",
    )
    parser.add_argument(
        "--model-dir", metavar="DIR", help="exllamav2: a folder with an EXL2 or FP16 Hugging Face model (required)"
    )
    parser.add_argument(
        "--cache-size",
        type=int,
        metavar="TOKENS",
        help="exllamav2: the KV cache, shared by the jobs running at once (default: max-seq-len x max-concurrency)",
    )
    parser.add_argument(
        "--max-seq-len",
        type=int,
        metavar="N",
        help=f"exllamav2: longest prompt + output of one job (default: {DEFAULT_MAX_SEQ_LEN}, or the model's context)",
    )
    parser.add_argument("--cache-quant", choices=CACHE_QUANTS, help="exllamav2: KV cache precision (default: fp16)")
    parser.add_argument("--max-concurrency", type=int, default=1, metavar="N", help="jobs at once (default: 1)")
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        metavar="R",
        help=f"synthetic: output pace, 0 for unpaced (default: {DEFAULT_TOKENS_PER_SECOND:g})",
    )
    parser.add_argument("--miner-id", help="this miner's id (default: the host name and a random suffix)")
    parser.add_argument(
        "--payout-address",
        default="",
        metavar="0xADDRESS",
        help="an Ethereum address to be paid at, as seed 004's routing API names nodes: 0x and 40 hex digits, "
        "EIP-55 checksummed when in mixed case (default: none)",
    )
    parser.add_argument(
        "--drain-grace",
        type=float,
        default=DEFAULT_DRAIN_GRACE_SECONDS,
        metavar="SECONDS",
        help="on SIGTERM, how long running jobs get to finish (default: %(default)g)",
    )
    add_client_tls_arguments(parser)
    add_log_format_argument(parser)


def config_from_args(ns: argparse.Namespace) -> tuple[MinerConfig, str, dict[str, object]]:
    """The agent's settings, the backend's name and its options. Raises ValueError for options that do not fit
    together or are missing (the CLI reports it as a usage error)."""
    key = miner_api_key(ns.api_key)
    if not key:
        raise ValueError(
            f"the miner needs a key with the miner role: pass --api-key or set ${ENV_MINER_API_KEY}"
            " (`aitbc keys create --role miner` makes one)"
        )
    options: dict[str, object] = {}
    if ns.backend != "exllamav2":
        _reject_exllamav2_options(ns)
    if ns.backend == "synthetic":
        if ns.model is not None:
            raise ValueError("--model applies to the llama.cpp backend; the synthetic backend runs no model")
        if ns.tokens_per_second is not None:
            options["tokens_per_second"] = ns.tokens_per_second
        if ns.model_name is not None:
            options["models"] = (ns.model_name,)
    else:
        if ns.tokens_per_second is not None:
            raise ValueError("--tokens-per-second applies to the synthetic backend only")
        if ns.backend == "exllamav2":
            options.update(_exllamav2_options(ns))
        elif ns.model is not None:
            if ns.model != SMOLLM2_MODEL_ID and ns.model_name is None:
                raise ValueError(GGUF_NEEDS_A_NAME)
            options["model"] = ns.model
        if ns.model_name is not None:
            options["model_name"] = ns.model_name
    target, tls = client_tls_from_args(ns, coordinator_address(ns.coordinator))
    config = MinerConfig(
        coordinator=target,
        tls=tls,
        api_key=key,
        miner_id=ns.miner_id or default_miner_id(),
        max_concurrency=ns.max_concurrency,
        drain_grace_seconds=ns.drain_grace,
        key_file=aitbc_home() / MINER_SIGNING_KEY_FILE,
        payout_address=ns.payout_address,
    )
    return config, ns.backend, options


def _exllamav2_options(ns: argparse.Namespace) -> dict[str, object]:
    if ns.model is not None:
        raise ValueError("--model applies to the llama.cpp backend; the exllamav2 backend loads --model-dir")
    if ns.model_dir is None:
        raise ValueError("the exllamav2 backend needs --model-dir, a folder with an EXL2 or FP16 model")
    # The generator's batch size: the agent never gives it more jobs than --max-concurrency anyway.
    options: dict[str, object] = {"model_dir": ns.model_dir, "max_concurrency": ns.max_concurrency}
    given = {"cache_size": ns.cache_size, "max_seq_len": ns.max_seq_len, "cache_quant": ns.cache_quant}
    options.update((name, value) for name, value in given.items() if value is not None)
    return options


def _reject_exllamav2_options(ns: argparse.Namespace) -> None:
    flags = {
        "--model-dir": ns.model_dir,
        "--cache-size": ns.cache_size,
        "--max-seq-len": ns.max_seq_len,
        "--cache-quant": ns.cache_quant,
    }
    for flag, value in flags.items():
        if value is not None:
            raise ValueError(f"{flag} applies to the exllamav2 backend only")


async def run_miner(config: MinerConfig, backend_name: str, backend_options: dict[str, object]) -> None:
    """Load the backend and serve until the agent is drained: the first SIGTERM or SIGINT drains, the second
    stops at once."""
    # Loading a model blocks for seconds; the loop stays free meanwhile.
    backend = await asyncio.to_thread(create_backend, backend_name, backend_options)
    try:
        agent = MinerAgent(config, backend)
        async with _drain_on_signals(agent):
            await agent.run()
    finally:
        await backend.close()


@asynccontextmanager
async def _drain_on_signals(agent: MinerAgent) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    drains: list[asyncio.Task[None]] = []

    def on_signal(signum: signal.Signals) -> None:
        if drains:
            log.warning("%s again: stopping now", signum.name)
            agent.stop()
            return
        log.info("%s: draining; send it again to stop now", signum.name)
        drains.append(loop.create_task(agent.drain(), name="miner drain on signal"))

    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        # drain() returns once run() has, whichever way run() ended.
        await asyncio.gather(*drains)
