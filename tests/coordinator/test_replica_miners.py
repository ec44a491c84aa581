"""The capability profiles a replica publishes with its lease (aitbc.coordinator.replica_miners)."""

from __future__ import annotations

import json

from aitbc.coordinator.replica_miners import decode, encode
from aitbc.domain.routing import Candidate, Price


def candidate(miner_id: str, *, draining: bool = False, vram_gib: int = 24) -> Candidate:
    return Candidate(
        miner_id=miner_id,
        models=frozenset({"tiny", "small"}),
        tier=2,
        max_vram_bytes=vram_gib << 30,
        free_slots=1,
        max_concurrency=2,
        draining=draining,
        reputation=7000,
        tokens_per_second=40.0,
        prices={"tiny": Price(10, 20)},
    )


def test_miners_with_one_capability_fold_into_one_profile_with_a_count() -> None:
    text = encode([candidate("a"), candidate("b"), candidate("c", draining=True), candidate("d", vram_gib=80)])
    assert sorted(
        (profile["count"], profile["draining"], profile["max_vram_bytes"]) for profile in json.loads(text)
    ) == [
        (1, False, 80 << 30),
        (1, True, 24 << 30),
        (2, False, 24 << 30),
    ]
    assert encode([candidate("b"), candidate("a")]) == encode([candidate("a"), candidate("b")])  # one spelling


def test_a_profile_decodes_to_what_routing_checks_and_nothing_it_must_not_trust() -> None:
    [profile] = decode("replica-1", encode([candidate("a")]))
    assert profile.miner_id == "replica-1#0"  # names the replica, never a miner to route to
    assert (profile.models, profile.tier, profile.max_vram_bytes, profile.max_concurrency) == (
        frozenset({"tiny", "small"}),
        2,
        24 << 30,
        2,
    )
    assert profile.prices == {"tiny": Price(10, 20)}
    assert (profile.free_slots, profile.reputation) == (0, 0)


def test_a_row_this_build_cannot_read_is_no_miners() -> None:
    assert decode("replica-1", "not json") == []
    assert decode("replica-1", '[{"models": ["tiny"]}]') == []
