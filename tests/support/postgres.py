"""A throwaway PostgreSQL cluster for the test run: Debian's binaries, a temp dir, a socket.

It listens on a Unix socket only (no TCP port to collide with), runs as the
``postgres`` user when the suite runs as root (initdb refuses root), and is
stopped at the end of the run. ``EVR_TEST_POSTGRES_URL`` points the suite at an
existing server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def _bin_dir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: "
            "run `make test` (it installs the Debian package postgresql)"
        )
    return candidates[-1].parent


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="evr-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 5432
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -p {self.port} -F "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@/postgres?host={self.socket_dir}&port={self.port}"


class Databases:
    """Makes and drops one fresh database per test on a server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)

    def _connect(self) -> psycopg.Connection:
        url = self.admin_url
        return psycopg.connect(
            dbname=url.database or "postgres",
            user=url.username,
            password=url.password,
            host=url.query.get("host") or url.host,  # type: ignore[arg-type]
            port=url.query.get("port") or url.port,  # type: ignore[arg-type]
            autocommit=True,
        )

    def create(self, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (which nobody may be connected to)."""
        name = f"evr_test_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with self._connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
