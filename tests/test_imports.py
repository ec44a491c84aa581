"""What importing the `aitbc` package and running client commands loads, checked in fresh interpreters.

The miner and the gateway (and tenacity, uvicorn and starlette behind them) are for the commands that run
them; a client command or a library user importing `aitbc` must not pay for them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_ONLY_PACKAGES = frozenset({"miner", "gateway", "uvicorn", "starlette", "tenacity", "prometheus_client"})

# Prints, as JSON, the top-level packages loaded by then that are in SERVER_ONLY_PACKAGES.
_REPORT = """
import json, sys
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules} & set(sys.argv[1:]))))
"""


def loaded_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter on this checkout; the server-only packages loaded by its end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    finished = subprocess.run(
        [sys.executable, "-c", code + _REPORT, *sorted(SERVER_ONLY_PACKAGES)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    loaded: list[str] = json.loads(finished.stdout.splitlines()[-1])
    return loaded


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_the_check_sees_a_loaded_server_package() -> None:
    assert loaded_after("import tenacity, gateway.main") == [
        "gateway",
        "prometheus_client",
        "starlette",
        "tenacity",
        "uvicorn",
    ]


def test_importing_the_cli_loads_no_server_package() -> None:
    assert loaded_after("import aitbc.cli") == []


def test_the_status_command_loads_no_server_package() -> None:
    # The whole command: parsing, the client, the failed call and its error report (nothing listens there).
    code = f"""
from aitbc.cli import main
exit_code = main(["status", "--coordinator", "127.0.0.1:{closed_port()}", "--api-key", "aitbc_key", "job_1"])
assert exit_code == 1, exit_code
"""
    assert loaded_after(code) == []


def test_the_server_commands_parse_without_loading_what_they_run() -> None:
    code = """
from aitbc.cli import build_parser
parser = build_parser()
for argv in (["coordinator"], ["up", "--backend", "synthetic"], ["keys", "create"], ["status", "job_1"]):
    parser.parse_args(argv)
"""
    assert loaded_after(code) == []


def test_no_module_of_the_aitbc_package_imports_a_server_package() -> None:
    code = """
import pkgutil, importlib, aitbc
for module in pkgutil.walk_packages(aitbc.__path__, "aitbc."):
    # __main__ runs the CLI when imported; the metrics modules are what serves Prometheus (loaded by
    # start_coordinator only when asked to serve metrics).
    if not module.name.endswith(".__main__") and not module.name.startswith("aitbc.services.metrics"):
        importlib.import_module(module.name)
"""
    assert loaded_after(code) == []
