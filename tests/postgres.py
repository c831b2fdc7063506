"""A throwaway PostgreSQL cluster for the tests: ``initdb`` into a temporary folder, a server
on a free loopback port, one fresh database per test that asks for one, all removed at the end.

The server binaries come from the distribution's ``postgresql`` package (``make test`` installs
it when no ``initdb`` is found). ``initdb`` refuses to run as root, so under root the cluster
belongs to the ``postgres`` system user and every server command runs through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from tests.helpers import free_port

SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
# Deliberately not UTC: stored timestamps must not depend on the server's time zone.
SERVER_TIMEZONE = "America/Sao_Paulo"


class PostgresNotAvailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: PATH first, then the
    highest version under Debian's ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: _version_key(path.parent.parent.name),
    )
    if not candidates:
        raise PostgresNotAvailableError(
            "PostgreSQL's server binaries were not found (no initdb on PATH or under "
            "/usr/lib/postgresql/*/bin); `make test` installs them with apt-get "
            "(package postgresql)."
        )
    return candidates[-1].parent


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class PostgresCluster:
    """One server; ``start`` and ``stop`` it, ``create_database`` for each test."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="docchat-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self._running = False

    # --- lifecycle ---

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.root, user=SYSTEM_USER, group=SYSTEM_USER)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        options = " ".join(
            f"-c {name}={value}"
            for name, value in {
                "listen_addresses": self.host,
                "port": self.port,
                "unix_socket_directories": self.data_dir,
                "max_connections": 300,
                "timezone": SERVER_TIMEZONE,
                # A throwaway cluster: durability costs time and buys nothing.
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
            }.items()
        )
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "--wait",
            "--timeout",
            "60",
            "start",
        )
        self._running = True

    def stop(self) -> None:
        if self._running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "--pgdata", str(self.data_dir), "--mode", "immediate", "stop")
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL (``driver=""`` gives a plain ``postgresql://`` libpq URL)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its name."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(driver=""), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- internals ---

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode,
                command,
                output=result.stdout,
                stderr=f"{result.stderr}\n{self.log_tail()}",
            )
