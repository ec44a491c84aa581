"""Defaults and environment variables shared by every AITBC command."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"
# The model a request that names none gets, unless the coordinator runs with --default-model (the seed's
# default; `aitbc up` sets the model its own miner serves instead).
DEFAULT_MODEL = "llama3.2"

# On shutdown (Ctrl-C, SIGTERM), how long running jobs get to finish: the coordinator waits this long for its
# miners, and a miner gives its own jobs as long, so both say the same. Jobs still running then are requeued.
SHUTDOWN_GRACE_SECONDS = 30.0

ENV_HOME = "AITBC_HOME"
ENV_COORDINATOR = "AITBC_COORDINATOR"
ENV_API_KEY = "AITBC_API_KEY"
ENV_MINER_API_KEY = "AITBC_MINER_API_KEY"
API_KEY_METADATA = "x-api-key"

CLIENT_KEY_FILE = "client.key"
MINER_KEY_FILE = "miner.key"
DATABASE_FILE = "aitbc.db"

# Long-lived miner streams and watches: both ends ping often enough that dead
# peers and idle-killing middleboxes are noticed within half a minute.
KEEPALIVE_PINGS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]
# Client channels also keep pinging while a stream carries no data (gRPC's default stops after two pings).
KEEPALIVE_OPTIONS: list[tuple[str, int]] = [*KEEPALIVE_PINGS, ("grpc.http2.max_pings_without_data", 0)]


def aitbc_home() -> Path:
    """The data directory: `$AITBC_HOME`, else `~/.aitbc`."""
    configured = os.environ.get(ENV_HOME)
    return Path(configured).expanduser() if configured else Path.home() / ".aitbc"


def coordinator_address(explicit: str | None = None) -> str:
    return explicit or os.environ.get(ENV_COORDINATOR) or DEFAULT_GRPC_ADDRESS


def saved_key(name: str, home: Path | None = None) -> str | None:
    """A key `aitbc up` saved under the data directory (CLIENT_KEY_FILE or MINER_KEY_FILE)."""
    try:
        return ((home or aitbc_home()) / name).read_text().strip() or None
    except FileNotFoundError:
        return None


def saved_client_key(home: Path | None = None) -> str | None:
    return saved_key(CLIENT_KEY_FILE, home)


def api_key(explicit: str | None = None) -> str | None:
    """A client key: `--api-key`, else `$AITBC_API_KEY`, else the key `aitbc up` saved."""
    return explicit or os.environ.get(ENV_API_KEY) or saved_client_key()


def miner_api_key(explicit: str | None = None) -> str | None:
    """A miner key: `--api-key`, else `$AITBC_MINER_API_KEY`, else the miner key `aitbc up` saved."""
    return explicit or os.environ.get(ENV_MINER_API_KEY) or saved_key(MINER_KEY_FILE)
