"""What an operator chooses about the gateway beyond its limits: CORS, OpenAI queueing, seed 004's price rate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    # Origins browsers may call the gateway from (`*` for any); none: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # OpenAI requests wait in the queue for a miner instead of failing with 503 at once; then
    # `/v1/models` lists every text model of the catalog, not only those an online miner serves.
    openai_queue: bool = False
    # Wei per credit, for seed 004's `POST /api/jobs/submit`; None: that route answers 503.
    wei_per_credit: int | None = None

    def __post_init__(self) -> None:
        if self.wei_per_credit is not None and self.wei_per_credit < 0:
            raise ValueError(f"wei_per_credit must not be negative: {self.wei_per_credit}")
