"""`aitbc balance` and `aitbc accounts credit`, and the starting balance `aitbc up` gives its client key.

Amounts are typed and shown in credits (exact, at most 6 decimals) and travel as integer µcr.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from aitbc import config
from aitbc.cli.tls_options import add_tls_options, coordinator_channel
from aitbc.client.errors import AitbcApiError, translate_rpc_errors
from aitbc.domain.errors import AitbcError
from aitbc.domain.keys import hash_key
from aitbc.domain.money import MICRO_PER_CREDIT, format_credits, parse_credits
from aitbc.store.sqlite import SqliteStore
from aitbc.v1 import accounts_pb2, accounts_pb2_grpc

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)

# What `aitbc up` credits its client key once (the mint's id makes it once per account, across restarts).
STARTING_BALANCE = 100 * MICRO_PER_CREDIT
_CALL_TIMEOUT = 10.0
_FIELDS = ("balance", "available", "held", "spent", "earned")
_PLANS = {
    "free": accounts_pb2.ACCOUNT_PLAN_FREE,
    "pro": accounts_pb2.ACCOUNT_PLAN_PRO,
    "enterprise": accounts_pb2.ACCOUNT_PLAN_ENTERPRISE,
}
_PLAN_NAMES = {value: name for name, value in _PLANS.items()}


def register_account_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    balance = subparsers.add_parser(
        "balance", help="show your account: balance, available, held, spent", description="show your account"
    )
    _connection_options(balance)
    balance.add_argument("--json", action="store_true", help="print the account as JSON (amounts in µcr)")
    balance.set_defaults(handler=_balance)

    accounts = subparsers.add_parser(
        "accounts", help="manage accounts (admin key)", description="manage accounts (needs an admin key)"
    )
    verbs = accounts.add_subparsers(title="commands", metavar="COMMAND", required=True)
    credit = verbs.add_parser("credit", help="mint credits into an account", description="mint credits (admin key)")
    credit.add_argument("account", metavar="ACCOUNT", help="the account id (an API key's owner)")
    credit.add_argument("amount", metavar="AMOUNT", type=_credits, help="credits, e.g. 12.5 (at most 6 decimals)")
    credit.add_argument(
        "--credit-id", default="", metavar="ID", help="retries with the same id credit once (default: none)"
    )
    _connection_options(credit)
    credit.set_defaults(handler=_credit)
    plan = verbs.add_parser(
        "plan", help="set an account's plan: how long its results are kept", description="set a plan (admin key)"
    )
    plan.add_argument("account", metavar="ACCOUNT", help="the account id (an API key's owner)")
    plan.add_argument("plan", metavar="PLAN", choices=list(_PLANS), help="free (7 days), pro (30) or enterprise (90)")
    _connection_options(plan)
    plan.set_defaults(handler=_plan)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", metavar="HOST:PORT", help="coordinator address")
    add_tls_options(parser)
    parser.add_argument("--api-key", metavar="KEY", help=f"API key (default: ${config.ENV_API_KEY} or the saved key)")


def _credits(text: str) -> int:
    try:
        return parse_credits(text, field="AMOUNT")
    except AitbcError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _call(
    ns: argparse.Namespace,
    request: accounts_pb2.GetAccountRequest | accounts_pb2.CreditAccountRequest | accounts_pb2.SetAccountPlanRequest,
) -> int:
    key = config.api_key(ns.api_key)
    if key is None:
        print(f"error: no API key: pass --api-key KEY or set {config.ENV_API_KEY}", file=sys.stderr)
        return 1
    metadata = ((config.API_KEY_METADATA, key),)
    try:
        with coordinator_channel(ns) as channel, translate_rpc_errors():
            stub = accounts_pb2_grpc.AccountServiceStub(channel)
            if isinstance(request, accounts_pb2.GetAccountRequest):
                account = stub.GetAccount(request, metadata=metadata, timeout=_CALL_TIMEOUT).account
            elif isinstance(request, accounts_pb2.SetAccountPlanRequest):
                account = stub.SetAccountPlan(request, metadata=metadata, timeout=_CALL_TIMEOUT).account
            else:
                account = stub.CreditAccount(request, metadata=metadata, timeout=_CALL_TIMEOUT).account
    except AitbcApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if getattr(ns, "json", False):
        plan = _PLAN_NAMES.get(account.plan, "free")
        print(json.dumps({"account": account.account, "address": account.address, "plan": plan, **_amounts(account)}))
        return 0
    print(f"account    {account.account}")
    print(f"address    {account.address}")
    print(f"plan       {_PLAN_NAMES.get(account.plan, 'free')}")
    for field, amount in _amounts(account).items():
        print(f"{field:<10} {format_credits(amount)} credits")
    return 0


def _amounts(account: accounts_pb2.Account) -> dict[str, int]:
    return {field: int(getattr(account, field)) for field in _FIELDS}


def _balance(ns: argparse.Namespace) -> int:
    return _call(ns, accounts_pb2.GetAccountRequest())


def _plan(ns: argparse.Namespace) -> int:
    return _call(ns, accounts_pb2.SetAccountPlanRequest(account=ns.account, plan=_PLANS[ns.plan]))


def _credit(ns: argparse.Namespace) -> int:
    return _call(ns, accounts_pb2.CreditAccountRequest(account=ns.account, amount=ns.amount, credit_id=ns.credit_id))


async def grant_starting_balance(database: Path, client_key: str) -> None:
    """Credit `aitbc up`'s client account `STARTING_BALANCE` once: the mint's id repeats, so a restart adds nothing."""
    store = await SqliteStore.open(database)
    try:
        principal = await store.principal_for(hash_key(client_key))
        if principal is not None:
            owner = principal.owner_id
            await store.credit(owner, STARTING_BALANCE, tx_id=f"mint:starting-balance:{owner}", now=datetime.now(UTC))
    finally:
        await store.close()
