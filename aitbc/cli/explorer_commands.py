"""`aitbc explorer blocks|block HEIGHT|transactions|receipts|stats`: the explorer's answers as JSON.

The explorer is public: no API key is sent. A list's `next_page_token` goes back in with `--page-token`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from aitbc import config
from aitbc.client.errors import AitbcApiError, translate_rpc_errors
from aitbc.v1 import explorer_pb2, explorer_pb2_grpc

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)
_CALL_TIMEOUT = 10.0


def register_explorer_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    explorer = subparsers.add_parser(
        "explorer",
        help="blocks, transactions, receipts and network totals (JSON)",
        description="the public explorer: blocks, transactions, receipts and network totals, as JSON",
    )
    verbs = explorer.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name, help_text in (
        ("blocks", "the newest block headers"),
        ("transactions", "the newest ledger transactions"),
        ("receipts", "the newest receipts"),
    ):
        verb = verbs.add_parser(name, help=help_text, description=help_text)
        verb.add_argument("--limit", type=int, default=0, help="1 to 100 (default: 20)")
        verb.add_argument(
            "--page-token",
            default="",
            metavar="TOKEN",
            help="a previous answer's next_page_token (default: the newest page)",
        )
        _connection_options(verb)
        verb.set_defaults(handler=_run, verb=name)
    block = verbs.add_parser(
        "block",
        help="one block with its transactions and receipts",
        description="one block with its transactions and receipts",
    )
    block.add_argument("height", type=int, metavar="HEIGHT")
    _connection_options(block)
    block.set_defaults(handler=_run, verb="block")
    stats = verbs.add_parser(
        "stats",
        help="network totals: jobs, tokens, miners, models, throughput, credits, block height",
        description="network totals: jobs, tokens, miners, models, throughput, credits, block height",
    )
    _connection_options(stats)
    stats.set_defaults(handler=_run, verb="stats")


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", metavar="HOST:PORT", help="coordinator address")


def _call(stub: explorer_pb2_grpc.ExplorerServiceStub, ns: argparse.Namespace) -> Message:
    options: dict[str, Any] = {"timeout": _CALL_TIMEOUT}
    if ns.verb == "blocks":
        return stub.ListBlocks(explorer_pb2.ListBlocksRequest(limit=ns.limit, page_token=ns.page_token), **options)
    if ns.verb == "transactions":
        transactions = explorer_pb2.ListTransactionsRequest(limit=ns.limit, page_token=ns.page_token)
        return stub.ListTransactions(transactions, **options)
    if ns.verb == "receipts":
        receipts = explorer_pb2.ListRecentReceiptsRequest(limit=ns.limit, page_token=ns.page_token)
        return stub.ListRecentReceipts(receipts, **options)
    if ns.verb == "block":
        return stub.GetBlock(explorer_pb2.GetBlockRequest(height=ns.height), **options)
    return stub.GetStats(explorer_pb2.GetStatsRequest(), **options)


def _run(ns: argparse.Namespace) -> int:
    try:
        with grpc.insecure_channel(config.coordinator_address(ns.coordinator)) as channel, translate_rpc_errors():
            response = _call(explorer_pb2_grpc.ExplorerServiceStub(channel), ns)
    except AitbcApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    data = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    print(json.dumps(data, indent=2))
    return 0
