"""`aitbc keys`: create a key in the local store; list and revoke keys through the running coordinator.

Creating works without a coordinator (it writes the store under the data directory, as `aitbc up` does).
Listing and revoking go through the coordinator, because only the running process can make a revocation take
effect at once: it forgets the key and ends the streams the key has open.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aitbc.cli.client_commands import add_connection_options, open_client
from aitbc.cli.command_parser import CommandParser, SubParsers
from aitbc.cli.output import note, print_listing, short_rfc3339
from aitbc.cli.reporting import reports_errors
from aitbc.cli.server_options import add_home_argument, home_of
from aitbc.config import DATABASE_FILE
from aitbc.coordinator.auth import create_api_key
from aitbc.domain.errors import AitbcError
from aitbc.domain.keys import Principal, Role
from aitbc.store.base import StoreUnavailableError
from aitbc.store.urls import StoreUrlError, open_store


def register_key_commands(subparsers: SubParsers[CommandParser]) -> None:
    about = "manage API keys: create one, list your account's, revoke one"
    keys = subparsers.add_parser("keys", help=about, description=about)
    commands = keys.add_subparsers(title="commands", metavar="COMMAND", required=True)

    about = "create an API key in the store under the data directory and print it (no coordinator needed)"
    create = commands.add_parser("create", help=about, description=about)
    create.add_argument(
        "--role", choices=[role.value for role in Role], default=Role.CLIENT.value, help="(default: %(default)s)"
    )
    create.add_argument("--owner", help="the account the key acts for (default: a new account of its own)")
    add_home_argument(create)
    create.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="the coordinator's store, as its --store names it: postgresql://… (default: the data directory's)",
    )
    create.set_defaults(handler=_create)

    about = "list your account's keys (an admin key: every key) with when each was created and last used"
    listing = commands.add_parser("list", help=about, description=about)
    add_connection_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_list)

    about = "revoke a key: it stops working at once, on open streams too; this cannot be undone"
    revoke = commands.add_parser("revoke", help=about, description=about)
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `aitbc keys list` shows it (key_...)")
    add_connection_options(revoke)
    revoke.set_defaults(handler=_revoke)


def _create(ns: argparse.Namespace) -> int:
    try:
        target = ns.store or home_of(ns) / DATABASE_FILE
        raw_key, principal = asyncio.run(mint_key(target, Role(ns.role), ns.owner))
    except AitbcError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    except StoreUrlError as error:
        print(f"error: --store: {error}", file=sys.stderr)
        return 2
    except StoreUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(raw_key)
    print(f"created {principal.role} key {principal.key_id} for account {principal.owner_id}", file=sys.stderr)
    return 0


async def mint_key(database: Path | str, role: Role, owner: str | None = None) -> tuple[str, Principal]:
    store = await open_store(database)
    try:
        return await create_api_key(store, role, datetime.now(UTC), owner)
    finally:
        await store.close()


@reports_errors
def _list(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        keys = client.list_api_keys()
    header = ("KEY ID", "ROLE", "ACCOUNT", "CREATED (UTC)", "LAST USED (UTC)", "REVOKED (UTC)")
    print_listing(keys, header, _key_row, as_json=ns.json)
    return 0


def _key_row(key: dict[str, Any]) -> tuple[str, ...]:
    return (
        key["key_id"],
        key["role"],
        key["owner_id"],
        short_rfc3339(key.get("created_at")),
        short_rfc3339(key.get("last_used_at")),
        short_rfc3339(key.get("revoked_at")),
    )


@reports_errors
def _revoke(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        key = client.revoke_api_key(ns.key_id)
    # Revoking twice answers the first revocation's time: the key has been dead since then.
    print(
        f"{key['key_id']} ({key['role']} key of account {key['owner_id']}) is revoked"
        f" since {short_rfc3339(key['revoked_at'])} UTC"
    )
    note("a revoked key stops working at once, on open streams too, and cannot be restored")
    return 0
