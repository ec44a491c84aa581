"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, trust auth, 127.0.0.1 on a free port.

`PostgresCluster.start()` finds the server binaries (`pg_config --bindir`, or Debian's
/usr/lib/postgresql/*/bin) and runs them as the `postgres` user when the tests run as root (the server refuses
to run as root). Tests that need a cluster are skipped, with the reason, when the binaries are missing. Each
test gets a fresh database, copied from a migrated template (`CREATE DATABASE … TEMPLATE`, fast).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from aitbc.store.postgres import migrate

INSTALL_HINT = "apt-get install -y postgresql (or `make test`, which installs it when run as root)"
TEMPLATE = "aitbc_template"


def server_bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are; None when PostgreSQL's server is not installed."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here; None when one can."""
    if server_bindir() is None:
        return f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to run the server as: " + INSTALL_HINT
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self._names = itertools.count(1)

    @classmethod
    def create(cls) -> PostgresCluster:
        """initdb a new cluster in a temp dir (not yet started)."""
        bindir = server_bindir()
        assert bindir is not None, unavailable_reason()
        root = Path(tempfile.mkdtemp(prefix="aitbc-pg-"))
        cluster = cls(bindir, root)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8")
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self, *, durable: bool = False) -> None:
        """Start (or restart) the server. Not `durable`, fsync and synchronous commits are off, which makes each
        test's database cheap but loses the last commits to `stop("immediate")`: a crash test needs `durable`."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c max_connections=300"
        )
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def prepare_template(self) -> None:
        """A database migrated once, that each test's database is copied from."""
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        template = await asyncpg.connect(self.url(TEMPLATE))
        try:
            await migrate(template)
        finally:
            await template.close()

    async def new_database(self) -> str:
        """A fresh, migrated database; its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        finally:
            await admin.close()
        return self.url(name)
