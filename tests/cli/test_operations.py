"""`aitbc coordinator` as an operator runs it: JSON logs, a metrics port, TLS flags checked at start."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.cli.conftest import free_port, spawn_aitbc
from tests.support.certs import make_certs


async def test_the_coordinator_logs_json_and_serves_metrics(tmp_path: Path) -> None:
    listen, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    certs = make_certs(tmp_path / "certs")
    args = ("coordinator", "--listen", listen, "--log-format", "json", "--metrics-listen", metrics)
    tls = ("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key))
    async with spawn_aitbc(*args, *tls, "--home", str(tmp_path / "home"), env={}) as spawned:
        said = await spawned.read_until("coordinator serving on", stream="stderr")
        lines = [json.loads(line) for line in said.splitlines()]
        assert {"time", "level", "logger", "message"} <= lines[-1].keys()
        assert any(line["message"].endswith("(TLS)") for line in lines)
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://{metrics}/metrics")
        assert scraped.status_code == 200
        assert "aitbc_miners_ready 0.0" in scraped.text
        spawned.interrupt()
        code, _, _ = await spawned.finish()
    assert code == 0


async def test_tls_flags_that_do_not_fit_are_refused_at_start(tmp_path: Path) -> None:
    home = ("--home", str(tmp_path / "home"))
    async with spawn_aitbc("coordinator", "--tls-cert", str(tmp_path / "missing.pem"), *home, env={}) as spawned:
        code, _, err = await spawned.finish()
    assert code == 2
    assert "--tls-cert and --tls-key go together" in err
    async with spawn_aitbc("coordinator", "--tls-client-ca", str(tmp_path / "ca.pem"), *home, env={}) as spawned:
        code, _, err = await spawned.finish()
    assert code == 2
    assert "--tls-client-ca needs --tls-cert and --tls-key" in err


async def test_a_client_command_names_an_unreadable_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    args = ("status", "job_1", "--coordinator", "grpcs://127.0.0.1:1", "--api-key", "k", "--tls-ca", str(missing))
    async with spawn_aitbc(*args, env={}) as spawned:
        code, _, err = await spawned.finish()
    assert code == 2
    assert f"cannot read {missing}" in err
