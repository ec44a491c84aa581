from __future__ import annotations

import dataclasses
import json

import pytest

from aitbc.domain.balances import AccountBalance
from aitbc.domain.blocks import GENESIS_PREVIOUS_HASH, Block, BlockHeader, seal_block
from aitbc.domain.chain import ChainProblem, verify_chain
from aitbc.domain.errors import AitbcError
from aitbc.domain.ledger import MINT_ADDRESS, NETWORK_FEE_ADDRESS, hold, mint, release
from aitbc.domain.signing import generate_seed
from tests.domain.settlement_fixtures import (
    CLIENT,
    COORDINATOR_KEY,
    COORDINATOR_SEED,
    HOLD,
    MINER,
    job_transactions,
    make_chain,
    make_receipt,
)


def reseal(chain: list[Block], height: int, **changes: object) -> list[Block]:
    """The chain with block `height` rebuilt from changed contents and re-signed, and every later block relinked."""
    rebuilt = list(chain[:height])
    for block in chain[height:]:
        contents: dict[str, object] = {
            "transactions": block.transactions,
            "receipts": block.receipts,
            "time": block.header.time,
        }
        if block.height == height:
            contents |= changes
        rebuilt.append(
            seal_block(
                previous=rebuilt[-1].header if rebuilt else None,
                coordinator_seed=COORDINATOR_SEED,
                **contents,  # type: ignore[arg-type]
            )
        )
    return rebuilt


def problem_of(chain: list[Block], **kwargs: object) -> ChainProblem:
    report = verify_chain(chain, coordinator_key=COORDINATOR_KEY, **kwargs)  # type: ignore[arg-type]
    assert report.problem is not None
    return report.problem


def test_a_good_chain_verifies_and_replays_to_the_expected_balances() -> None:
    chain = make_chain(jobs_per_block=3, blocks=4)
    # Each of 9 jobs charged 803 µcr: 763 to the miner, 40 to the network.
    expected = {
        MINT_ADDRESS: AccountBalance(-1_000_000, 0),
        CLIENT: AccountBalance(1_000_000 - 9 * 803, 0),
        MINER: AccountBalance(9 * 763, 0),
        NETWORK_FEE_ADDRESS: AccountBalance(9 * 40, 0),
    }
    report = verify_chain(chain, coordinator_key=COORDINATOR_KEY, expected_balances=expected)
    assert report.ok, report.problem
    assert report.blocks_checked == 4
    assert report.tip == chain[-1].header
    assert report.balances.nonzero() == expected


def test_an_empty_chain_is_trivially_fine() -> None:
    assert verify_chain([], coordinator_key=COORDINATOR_KEY).ok


def test_blocks_round_trip_through_json() -> None:
    for block in make_chain():
        assert Block.from_json(json.loads(json.dumps(block.to_json()))) == block


def test_the_genesis_block_links_to_zeros_and_each_block_to_the_hash_of_the_last_header() -> None:
    chain = make_chain()
    assert chain[0].header.previous_hash == GENESIS_PREVIOUS_HASH
    assert chain[2].header.previous_hash == chain[1].block_hash
    assert chain[1].block_hash == chain[1].header.block_hash


def test_a_missing_block_is_a_height_problem() -> None:
    chain = make_chain(blocks=4)
    assert problem_of([chain[0], chain[2], chain[3]]) == ChainProblem(2, "height", "1", "2")


def test_a_rewritten_block_breaks_the_link_of_the_next_one() -> None:
    chain = make_chain(blocks=4)
    rewritten = reseal(chain, 1, receipts=chain[1].receipts[:1], transactions=chain[1].transactions[:2])
    # Block 1 itself is consistent now; block 2 still points at the old block 1.
    problem = problem_of([*rewritten[:2], *chain[2:]])
    assert (problem.height, problem.what) == (2, "previous_hash")
    assert (problem.expected, problem.found) == (rewritten[1].block_hash, chain[1].block_hash)


def test_a_block_signed_by_another_key_is_reported() -> None:
    chain = make_chain()
    forged = seal_block(
        previous=chain[0].header,
        time=chain[1].header.time,
        transactions=chain[1].transactions,
        receipts=chain[1].receipts,
        coordinator_seed=generate_seed(),
    )
    problem = problem_of([chain[0], forged, *chain[2:]])
    assert (problem.height, problem.what) == (1, "coordinator_signature")


def test_contents_that_do_not_match_the_signed_roots_are_reported() -> None:
    chain = make_chain()
    swapped = dataclasses.replace(chain[1], transactions=tuple(reversed(chain[1].transactions)))
    problem = problem_of([chain[0], swapped, chain[2]])
    assert (problem.height, problem.what) == (1, "tx_root")
    assert problem.expected != problem.found
    dropped = dataclasses.replace(chain[2], receipts=chain[2].receipts[:1])
    assert problem_of([*chain[:2], dropped]) == ChainProblem(2, "receipt_count", "1", "2")


def test_time_going_backwards_is_reported() -> None:
    chain = reseal(make_chain(), 2, time="2026-02-13T08:00:00Z")
    problem = problem_of(chain)
    assert (problem.height, problem.what, problem.found) == (2, "time", "2026-02-13T08:00:00Z")


def test_a_receipt_without_its_settlement_in_the_block_is_reported() -> None:
    chain = make_chain()
    orphan = make_receipt("job-orphan")
    chain = reseal(chain, 1, receipts=(*chain[1].receipts, orphan))
    problem = problem_of(chain)
    assert (problem.height, problem.what, problem.found) == (1, "receipt 'rcpt-job-orphan' settlement", "none")


def test_a_receipt_that_disagrees_with_its_settlement_is_reported() -> None:
    chain = make_chain()
    receipt = chain[1].receipts[0]
    other = dataclasses.replace(receipt.body, miner=CLIENT).issue(COORDINATOR_SEED)
    chain = reseal(chain, 1, receipts=(other, *chain[1].receipts[1:]))
    problem = problem_of(chain)
    assert (problem.height, problem.what) == (1, f"receipt {receipt.receipt_id!r} settlement")
    assert problem.expected == str((CLIENT, CLIENT, 803, 763, 40))
    assert problem.found == str((CLIENT, MINER, 803, 763, 40))


def test_spending_more_than_was_minted_is_reported_at_the_transaction() -> None:
    chain = make_chain()
    overspend = hold("job-big", CLIENT, 2_000_000)
    chain = reseal(chain, 2, transactions=(*chain[2].transactions, overspend))
    problem = problem_of(chain)
    assert problem.height == 2
    assert "'hold:job-big'" in problem.what
    assert "exceeds the available" in problem.what
    assert problem.expected == ">= 2000000"


def test_settling_a_job_twice_is_reported() -> None:
    chain = make_chain()
    settled = job_transactions(chain[1].receipts[0])[1]
    again = dataclasses.replace(settled, tx_id="settle:again")  # another id: only the ledger rule can catch it
    chain = reseal(chain, 2, transactions=(*chain[2].transactions, again))
    problem = problem_of(chain)
    assert problem.height == 2
    assert "'settle:again': job 'job-1-0' was already settled" in problem.what


def test_a_repeated_transaction_id_is_reported() -> None:
    chain = make_chain()
    chain = reseal(chain, 2, transactions=(*chain[2].transactions, mint("mint-1", CLIENT, 5)))
    assert problem_of(chain) == ChainProblem(2, "transaction 'mint-1' id", "an id not used before", "a repeated id")


def test_balances_other_than_expected_are_reported_for_the_first_account_that_differs() -> None:
    chain = make_chain()
    replayed = verify_chain(chain, coordinator_key=COORDINATOR_KEY).balances.nonzero()
    expected = {**replayed, MINER: AccountBalance(1, 0)}
    problem = problem_of(chain, expected_balances=expected)
    assert problem == ChainProblem(2, f"balance of {MINER}", str(AccountBalance(1, 0)), str(AccountBalance(4 * 763, 0)))


def test_the_report_keeps_what_verified_before_the_problem() -> None:
    chain = make_chain(blocks=4)
    broken = [*chain[:3], dataclasses.replace(chain[3], coordinator_signature=chain[2].coordinator_signature)]
    report = verify_chain(broken, coordinator_key=COORDINATOR_KEY)
    assert not report.ok
    assert report.blocks_checked == 3
    assert report.tip == chain[2].header
    assert str(report.problem).startswith("block 3: coordinator_signature: expected a valid signature")


def test_an_open_hold_at_the_end_of_a_block_is_fine_and_its_release_later_too() -> None:
    chain = make_chain(blocks=2)
    chain = reseal(chain, 1, transactions=(*chain[1].transactions, hold("job-open", CLIENT, HOLD)))
    chain.append(
        seal_block(
            previous=chain[-1].header,
            time="2026-02-13T11:00:00Z",
            transactions=[release("job-open", CLIENT, HOLD)],
            receipts=[],
            coordinator_seed=COORDINATOR_SEED,
        )
    )
    assert verify_chain(chain, coordinator_key=COORDINATOR_KEY).ok


def test_a_malformed_header_is_refused_naming_the_field() -> None:
    header = make_chain(blocks=1)[0].header
    with pytest.raises(AitbcError, match="previous_hash"):
        BlockHeader(**{**dataclasses.asdict(header), "previous_hash": "00"})
    data = make_chain(blocks=1)[0].to_json()
    del data["header"]["coordinator_signature"]
    with pytest.raises(AitbcError, match="coordinator_signature: is missing"):
        Block.from_json(data)
