"""Settings of a miner agent."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from aitbc.config import SHUTDOWN_GRACE_SECONDS
from aitbc.domain.eth_address import address_problem
from aitbc.tls import ClientTls

# The coordinator waits as long for a draining miner as a miner gives its jobs (one number for both).
DEFAULT_DRAIN_GRACE_SECONDS = SHUTDOWN_GRACE_SECONDS


# The miner's signing key, in its home.
MINER_SIGNING_KEY_FILE = "miner-signing-key.pem"


def default_miner_id() -> str:
    """The host name and a random suffix, so that two miners on one host stay apart."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class MinerConfig:
    # HOST:PORT of the coordinator's gRPC endpoint.
    coordinator: str
    # A key with the miner role.
    api_key: str
    miner_id: str = field(default_factory=default_miner_id)
    # Jobs run at once; the backend may lower it to what it can really do.
    max_concurrency: int = 1
    # Seconds between heartbeats until the coordinator's Welcome names its own interval.
    heartbeat_interval: float = 5.0
    # While the stream's writer is behind, token text of a job is merged into one waiting JobTokens message of
    # at most this many bytes (a single larger chunk still goes out whole).
    coalesce_max_bytes: int = 16 * 1024
    # Messages waiting for the writer before senders wait too. With `coalesce_max_bytes` this bounds the memory
    # a stalled stream can take, and makes generation pause rather than run ahead.
    outbox_max_messages: int = 64
    # After a drain begins (SIGTERM or the coordinator's Drain), how long running jobs get to finish before they
    # are stopped and reported as failed, so that the coordinator resumes them elsewhere.
    drain_grace_seconds: float = DEFAULT_DRAIN_GRACE_SECONDS
    # Reconnect backoff: exponential from the initial wait, capped, plus jitter up to a tenth of the cap.
    reconnect_initial_backoff: float = 0.1
    reconnect_max_backoff: float = 10.0
    # The miner's Ed25519 signing key (PKCS#8 PEM, mode 0600), created there on first start. None: a key for
    # this process only, for tests and throwaway miners; receipts then name a key no later run can sign with.
    key_file: Path | None = None
    # TLS to the coordinator (CA, and a client certificate where it requires mutual TLS); None: plaintext.
    tls: ClientTls | None = None
    # An Ethereum address to be paid at (seed 004's assignedNode); empty: none.
    payout_address: str = ""

    def __post_init__(self) -> None:
        if self.payout_address and (problem := address_problem(self.payout_address)) is not None:
            raise ValueError(f"--payout-address {problem}")
        for name in ("coordinator", "api_key", "miner_id"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        for name in ("max_concurrency", "coalesce_max_bytes", "outbox_max_messages"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("heartbeat_interval", "reconnect_initial_backoff", "reconnect_max_backoff"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.drain_grace_seconds < 0:
            raise ValueError(f"drain_grace_seconds must not be negative, got {self.drain_grace_seconds}")
