"""`aitbc ledger verify`: replay the coordinator's blocks from genesis and check them against its balances.

Reads the store in AITBC_HOME directly (no coordinator needed): every block's signature, hash chain,
Merkle roots, receipts and transactions (`aitbc.domain.chain.verify_chain`), then the transactions not
sealed yet, and finally the balances the store keeps for every account, which must equal the replay.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TypeVar

from aitbc import config
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.balances import AccountBalance, Balances
from aitbc.domain.blocks import Block
from aitbc.domain.chain import verify_chain
from aitbc.domain.errors import AitbcError
from aitbc.domain.ledger import LedgerError
from aitbc.domain.signing import decode_key, encode_key, public_key_of
from aitbc.key_files import KeyFileError, read_private_key
from aitbc.store.sqlite import SqliteStore

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)
_PAGE = 100


def register_ledger_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    ledger = subparsers.add_parser(
        "ledger", help="the coordinator's ledger and blocks", description="the coordinator's ledger and blocks"
    )
    verbs = ledger.add_subparsers(title="commands", metavar="COMMAND", required=True)
    verify = verbs.add_parser(
        "verify",
        help="replay every block and check the balances",
        description="replay every block from genesis and check signatures, hashes, roots and balances",
    )
    verify.add_argument("--home", type=Path, help=f"the data directory (default: {config.aitbc_home()})")
    verify.add_argument(
        "--coordinator-key",
        metavar="KEY",
        help="the coordinator's public key: --coordinator-key=KEY (default: its key file)",
    )
    verify.set_defaults(handler=_verify)


def _verify(ns: argparse.Namespace) -> int:
    home: Path = ns.home or config.aitbc_home()
    try:
        if ns.coordinator_key:
            key = decode_key(ns.coordinator_key, field="--coordinator-key")
        else:
            key = public_key_of(read_private_key(home / COORDINATOR_KEY_FILE))
    except (AitbcError, KeyFileError, OSError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    database = home / config.DATABASE_FILE
    if not database.exists():
        print(f"error: no store at {database}", file=sys.stderr)
        return 2
    return asyncio.run(_check(database, key))


async def _check(database: Path, key: bytes) -> int:
    store = await SqliteStore.open(database)
    try:
        blocks: list[Block] = []
        try:
            while page := await store.blocks(from_height=len(blocks), limit=_PAGE):
                blocks.extend(page)
        except (LedgerError, AitbcError, ValueError) as error:  # a stored row that is no valid transaction
            print(
                f"problem           the blocks from {len(blocks)} on cannot be read: {getattr(error, 'message', error)}"
            )
            return 1
        report = verify_chain(blocks, coordinator_key=key)
        print(f"coordinator key   {encode_key(key)}")
        print(f"blocks            {report.blocks_checked} of {len(blocks)} verified")
        if report.problem is not None:
            print(f"problem           {report.problem}")
            return 1
        sealed = sum(len(block.transactions) for block in blocks)
        tail = [entry.transaction for entry in await store.ledger(after_seq=sealed, limit=1_000_000)]
        try:
            replayed = report.balances.apply(*tail)
            replayed.check_invariants()
        except LedgerError as error:
            print(f"problem           unsealed transactions: {error}")
            return 1
        print(f"unsealed          {len(tail)} transactions replayed")
        return _compare(
            replayed, {record.address: (record.available, record.held) for record in await store.accounts()}
        )
    finally:
        await store.close()


def _compare(replayed: Balances, stored: dict[str, tuple[int, int]]) -> int:
    for address in sorted(set(stored) | set(replayed.accounts)):
        expected = replayed.of(address)
        found = AccountBalance(*stored.get(address, (0, 0)))
        if found != expected:
            print(f"problem           account {address}: the ledger gives {expected}, the store holds {found}")
            return 1
    print(f"balances          {len(stored)} accounts match the ledger; {replayed.minted} µcr minted in all")
    return 0
