"""Fixtures every test package may use: a local babelforce sandbox on loopback, anyio's backend, and the audit
store under test (SQLite and PostgreSQL). Helpers that are not fixtures live in tests/support.py.

Property tests (hypothesis) run under the profile HYPOTHESIS_PROFILE names: "quick" by default (40 examples per
test, a few seconds for them all; failures found are kept in .hypothesis/ and tried first next time), "thorough"
for 500 (`HYPOTHESIS_PROFILE=thorough python3 dev.py test`, some minutes: after changing a parser, a rule or a
strategy). A test sets its own deadline and health checks, never its number of examples.

The audit store: a test (or a module-scoped fixture) that takes `store_kind` runs once per store, "sqlite" and
"postgresql"; `audit_target` is a fresh store of that kind for one test, `new_audit_target(name)` one for a
module-scoped bot. PostgreSQL comes from LEADBOT_TEST_POSTGRES_URL, else a server on 127.0.0.1:5432 (user postgres),
else a throwaway server started from the installed binaries, one per pytest worker (`postgres`, session-scoped),
with a fresh database per store (CREATE DATABASE, dropped afterwards). Only when none exists are those tests
skipped, and the terminal summary says so; under CI=true (or LEADBOT_TEST_REQUIRE_POSTGRES=1) they fail instead."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from sandbox import SandboxServer
from tests.support import (
    POSTGRES_SKIP,
    POSTGRES_URL_ENV,
    PostgresServer,
    SandboxControl,
    fetch_token,
    postgres_required,
)

STORES = ("sqlite", "postgresql")

settings.register_profile("quick", max_examples=40)
settings.register_profile("thorough", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@pytest.fixture
def anyio_backend() -> str:
    """`@pytest.mark.anyio` tests run on asyncio (the bot's own loop), not trio."""
    return "asyncio"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A started sandbox with the demo seed (fresh per test), stopped afterwards."""
    with SandboxServer(seed="demo") as server:
        yield server


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes with any SandboxServer arguments (e.g. leads=100_000, hopper_size=5); all stop at teardown."""
    started: list[SandboxServer] = []

    def start(**kwargs: Any) -> SandboxServer:
        server = SandboxServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def control(sandbox: SandboxServer) -> Iterator[SandboxControl]:
    """The sandbox's own endpoints (faults, stats, dialling)."""
    ctl = SandboxControl(sandbox.base_url)
    yield ctl
    ctl.close()


@pytest.fixture
def sandbox_token(sandbox: SandboxServer) -> str:
    return fetch_token(sandbox.base_url)


# ---------------------------------------------------------------------- the audit store under test


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """This worker's PostgreSQL server (found or started once), or a skip (a failure under CI) saying why not."""
    found = PostgresServer.find_or_start()
    if isinstance(found, str):
        if postgres_required():
            pytest.fail(f"{POSTGRES_SKIP}: {found}; CI needs them to run (.ci/run installs PostgreSQL)")
        pytest.skip(f"{POSTGRES_SKIP}: {found}")
    yield found
    found.close()


@pytest.fixture(scope="module", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which audit store the module's tests (and its module-scoped bots) run on: each test runs on both."""
    return str(request.param)


def _audit_target(kind: str, request: pytest.FixtureRequest, path: Path) -> str:
    """A fresh, empty store of `kind`: a file path for SQLite, a new database's URL for PostgreSQL (dropped when the
    requesting fixture's scope ends)."""
    if kind == "sqlite":
        return str(path)
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url))
    return url


@pytest.fixture
def audit_target(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh audit store (LEADBOT_DB's value) of the module's `store_kind`, for one test: on PostgreSQL the
    worker's scratch database, emptied."""
    if store_kind == "sqlite":
        return str(tmp_path / "data" / "leadbot.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.scratch_database()


@pytest.fixture(scope="module")
def new_audit_target(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """Make fresh audit stores of the module's `store_kind` that live as long as the module (for shared bots)."""

    def make(name: str) -> str:
        return _audit_target(store_kind, request, tmp_path_factory.mktemp(name) / "leadbot.db")

    return make


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it when the PostgreSQL store tests did not run: a green run must not hide that half the store is untested."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if POSTGRES_SKIP in str(report.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"PostgreSQL: {len(skipped)} audit-store tests were skipped ({POSTGRES_SKIP}); set {POSTGRES_URL_ENV} "
            "or install PostgreSQL (initdb, pg_ctl) to run them.",
            yellow=True,
            bold=True,
        )
