"""`aitbc webhooks`: register URLs that hear of finished jobs, list, inspect, delete and test them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aitbc.cli.command_parser import CommandParser, SubParsers
from aitbc.cli.connection import add_connection_options, open_client
from aitbc.cli.output import print_json, print_listing, render_table, short_rfc3339
from aitbc.cli.reporting import reports_errors
from aitbc.domain.webhooks import JOB_EVENTS

EVENTS = list(JOB_EVENTS.values())


def register_webhook_commands(subparsers: SubParsers[CommandParser]) -> None:
    about = "webhooks: signed POSTs to your URL when your jobs complete, fail or are canceled"
    webhooks = subparsers.add_parser("webhooks", help=about, description=about)
    commands = webhooks.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, handler: Any, *, with_id: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        if with_id:
            parser.add_argument("webhook_id", metavar="WEBHOOK_ID", help="as `aitbc webhooks list` shows it (wh_...)")
        add_connection_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    create = add("create", "register a URL; prints its signing secret, shown only this once", _create, with_id=False)
    create.add_argument("url", metavar="URL", help="an http(s) URL that accepts POSTs")
    create.add_argument(
        "--event",
        dest="events",
        action="append",
        choices=EVENTS,
        help="an event to deliver; repeat for more (default: all three)",
    )
    create.add_argument("--json", action="store_true", help="print JSON (with the secret) instead of text")
    listing = add("list", "your webhooks", _list, with_id=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add("get", "a webhook and its recent deliveries (status, attempts, latency) as JSON", _get)
    add("delete", "delete a webhook; its pending deliveries are dropped", _delete)
    add("test", "send a webhook.test event to the webhook now", _test)


@reports_errors
def _create(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        webhook = client.create_webhook(ns.url, ns.events or EVENTS)
    if ns.json:
        print_json(webhook)
        return 0
    print(f"created {webhook['webhook_id']} for {', '.join(webhook['events'])} -> {webhook['url']}")
    print(f"signing secret (shown only now; keep it to verify deliveries): {webhook['secret']}")
    return 0


@reports_errors
def _list(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        webhooks = client.list_webhooks()
    header = ("WEBHOOK", "URL", "EVENTS", "CREATED (UTC)")
    print_listing(webhooks, header, _row, as_json=ns.json)
    return 0


def _row(webhook: dict[str, Any]) -> tuple[str, ...]:
    return (webhook["webhook_id"], webhook["url"], ", ".join(webhook["events"]), short_rfc3339(webhook["created_at"]))


@reports_errors
def _get(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        print_json(client.get_webhook(ns.webhook_id))
    return 0


@reports_errors
def _delete(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        client.delete_webhook(ns.webhook_id)
    print(f"deleted {ns.webhook_id}", file=sys.stderr)
    return 0


@reports_errors
def _test(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        delivery = client.test_webhook(ns.webhook_id)
    header = ("DELIVERY", "EVENT", "STATUS")
    print(render_table(header, [(delivery["delivery_id"], delivery["event"], delivery["status"])]))
    print(f"queued; `aitbc webhooks get {ns.webhook_id}` shows how it went", file=sys.stderr)
    return 0
