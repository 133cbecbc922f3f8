"""Fixtures every test package may use: a local babelforce sandbox on loopback, and anyio's backend.
Helpers that are not fixtures live in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import SandboxServer
from tests.support import SandboxControl, fetch_token


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
