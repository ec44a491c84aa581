"""`--allow-private-webhooks` reaches the coordinator's config from `aitbc coordinator` and `aitbc up`."""

from __future__ import annotations

from pathlib import Path

from aitbc.cli import build_parser
from aitbc.cli.server_runners import _coordinator_config
from aitbc.domain.catalog import DEFAULT_CATALOG

PUBLIC_URL = "http://127.0.0.1:8080"


def test_the_flag_is_off_unless_given(tmp_path: Path) -> None:
    parser = build_parser()
    for command in ("coordinator", "up"):
        assert parser.parse_args([command]).allow_private_webhooks is False
        assert parser.parse_args([command, "--allow-private-webhooks"]).allow_private_webhooks is True
    config = _coordinator_config(DEFAULT_CATALOG, "llama3.2", tmp_path, PUBLIC_URL, allow_private_webhooks=True)
    assert config.allow_private_webhooks
    assert not _coordinator_config(DEFAULT_CATALOG, "llama3.2", tmp_path, PUBLIC_URL).allow_private_webhooks
