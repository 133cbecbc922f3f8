"""Raw-HTTP helpers for the sandbox's own tests.

`api`/`raw` use a fresh demo sandbox per test (for tests that change state); `shared_api`/`shared_raw` use one
demo sandbox per module, for tests that only read or are refused (starting and stopping costs ~0.2 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from sandbox import SandboxServer
from tests.support import SSL_CONTEXT, fetch_token


def api_client(server: SandboxServer) -> httpx.Client:
    """An httpx client on the server's base URL, already carrying a bearer token."""
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {fetch_token(server.base_url)}"},
        timeout=30,
        verify=SSL_CONTEXT,
    )


def raw_client(server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30, verify=SSL_CONTEXT)


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with api_client(sandbox) as client:
        yield client


@pytest.fixture
def raw(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client without credentials (auth tests, /sandbox/* controls)."""
    with raw_client(sandbox) as client:
        yield client


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed="demo") as server:
        yield server


@pytest.fixture
def shared_api(shared_sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with api_client(shared_sandbox) as client:
        yield client


@pytest.fixture
def shared_raw(shared_sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with raw_client(shared_sandbox) as client:
        yield client


@pytest.fixture
def api_factory(sandbox_factory: Callable[..., SandboxServer]) -> Iterator[Callable[..., httpx.Client]]:
    """Start a sandbox with the given arguments and return an authenticated client for it."""
    clients: list[httpx.Client] = []

    def make(**kwargs: object) -> httpx.Client:
        client = api_client(sandbox_factory(**kwargs))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
