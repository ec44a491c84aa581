"""What a replica tells the others of its stream miners: enough for a submit anywhere to know a job can run.

Miners with the same capabilities fold into one profile with a count, so the row stays small with thousands of
miners. Routing to a miner stays with the replica the miner is connected to; these profiles only answer
"could any miner of the network ever serve this job?" (`check_route`), so a submit on a replica without a
suitable miner of its own is not refused while another replica has one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from aitbc.domain.routing import Candidate, Price


def encode(candidates: Iterable[Candidate]) -> str:
    # Folded on tuples, encoded once per profile: with 10,000 miners a JSON text per miner held the event loop
    # for about 85 ms at every lease renewal.
    profiles: Counter[tuple[Any, ...]] = Counter()
    for candidate in candidates:
        prices = tuple(sorted((model, p.input_per_1k, p.output_per_1k) for model, p in candidate.prices.items()))
        profiles[
            (
                tuple(sorted(candidate.models)),
                candidate.tier,
                candidate.max_vram_bytes,
                candidate.max_concurrency,
                candidate.draining,
                prices,
            )
        ] += 1
    return json.dumps(
        [
            {
                "models": list(models),
                "tier": tier,
                "max_vram_bytes": vram,
                "max_concurrency": slots,
                "draining": draining,
                "prices": {model: [i, o] for model, i, o in prices},
                "count": count,
            }
            for (models, tier, vram, slots, draining, prices), count in sorted(profiles.items())
        ],
        sort_keys=True,
    )


def decode(replica_id: str, text: str) -> list[Candidate]:
    """One candidate per profile (its id names the replica), or none from a row this build cannot read."""
    try:
        profiles: list[dict[str, Any]] = json.loads(text)
        return [
            Candidate(
                miner_id=f"{replica_id}#{index}",
                models=frozenset(profile["models"]),
                tier=int(profile["tier"]),
                max_vram_bytes=int(profile["max_vram_bytes"]),
                free_slots=0,
                max_concurrency=int(profile["max_concurrency"]),
                draining=bool(profile["draining"]),
                reputation=0,
                tokens_per_second=0.0,
                prices={model: Price(int(i), int(o)) for model, (i, o) in profile["prices"].items()},
            )
            for index, profile in enumerate(profiles)
        ]
    except (ValueError, KeyError, TypeError):
        return []
