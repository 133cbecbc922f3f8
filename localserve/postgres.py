"""A PostgreSQL server for tests and benchmarks: found (LEADBOT_TEST_POSTGRES_URL, then 127.0.0.1:5432 as user
postgres) or started from the installed binaries (initdb, pg_ctl) in a throwaway folder, with a fresh database per
caller.

Here rather than in tests/ so that the benchmark (bench/) starts its PostgreSQL the same way the tests do. A local
server, like the rest of localserve: `leadbot run` never imports it (tests/bot/test_imports.py).
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["LOCAL_POSTGRES_URL", "POSTGRES_URL_ENV", "PostgresServer"]

#: A PostgreSQL server the tests (and the bench) may use (its user must be allowed to CREATE DATABASE).
POSTGRES_URL_ENV = "LEADBOT_TEST_POSTGRES_URL"
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresServer:
    """A PostgreSQL server for one pytest worker (or one bench run): found (LEADBOT_TEST_POSTGRES_URL, then
    127.0.0.1:5432 as user postgres) or started from the installed binaries in a throwaway folder, and a fresh
    database per caller."""

    def __init__(self, admin_url: str, how: str, stop: Callable[[], None] | None = None) -> None:
        self.admin_url = admin_url
        self.how = how
        self._stop = stop
        self._scratch: str | None = None

    @classmethod
    def find_or_start(cls, *, durable: bool = False) -> PostgresServer | str:
        """The server, or why there is none (one sentence). A throwaway server skips flushing to disk (tests need
        no durability) unless `durable`: then it commits as a production server does, fsync and all (the bench
        compares its writes with SQLite's, which flushes each commit)."""
        import psycopg

        given = os.environ.get(POSTGRES_URL_ENV)
        if given:
            return cls(given, f"{POSTGRES_URL_ENV}")
        try:
            psycopg.connect(LOCAL_POSTGRES_URL, connect_timeout=1).close()
            return cls(LOCAL_POSTGRES_URL, "the server on 127.0.0.1:5432")
        except psycopg.Error:
            pass
        return cls._start_throwaway(durable=durable)

    @classmethod
    def _start_throwaway(cls, *, durable: bool) -> PostgresServer | str:
        binaries = _postgres_binaries()
        if binaries is None:
            return f"{POSTGRES_URL_ENV} is unset, nothing answers on 127.0.0.1:5432 and initdb/pg_ctl are not installed"
        initdb, pg_ctl = binaries
        as_user: list[str] = []
        folder = Path(tempfile.mkdtemp(prefix="leadbot-pg-"))
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # the server refuses to run as root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(folder, ignore_errors=True)
                return "running as root and there is no postgres user to start a throwaway server as"
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        data = folder / "data"
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=300 -c shared_buffers=32MB"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            subprocess.run(
                [*as_user, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            subprocess.run(
                [
                    *as_user,
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(folder / "server.log"),
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    options,
                    "start",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except (subprocess.SubprocessError, OSError) as failed:
            log_text = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            return f"a throwaway server from {initdb} did not start ({type(failed).__name__}) {log_text[-300:]}"

        def stop() -> None:
            subprocess.run(
                [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=30
            )
            shutil.rmtree(folder, ignore_errors=True)

        atexit.register(stop)  # also when the session ends without its fixtures' teardown (Ctrl-C)
        return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", f"a throwaway server on port {port}", stop)

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"leadbot_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))

    def scratch_database(self) -> str:
        """This server's scratch database, emptied (10 ms, where CREATE and DROP DATABASE take over 100): for one
        test at a time. Connections a test left open are cut first; an empty schema, as a new database has."""
        import psycopg

        if self._scratch is None:
            self._scratch = self.create_database()
        try:
            with psycopg.connect(self._scratch, autocommit=True) as scratch:
                scratch.execute(
                    b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    b"WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                scratch.execute(b"DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        except psycopg.Error:  # e.g. a server whose user may create databases but not drop that schema
            self._scratch = self.create_database()
        return self._scratch

    def drop_database(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with suppress(psycopg.Error), psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    def close(self) -> None:
        if self._scratch is not None:
            self.drop_database(self._scratch)
        if self._stop is not None:
            self._stop()
            atexit.unregister(self._stop)
            self._stop = None


def _postgres_binaries() -> tuple[str, str] | None:
    """initdb and pg_ctl from PATH, else from Debian's /usr/lib/postgresql/<version>/bin (newest first)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return str(folder / "initdb"), str(folder / "pg_ctl")
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
