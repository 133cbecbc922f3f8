"""Shared fixtures: a local babelforce sandbox on loopback, for the sandbox's own tests and the client's."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sandbox import SandboxServer


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


# Building an SSL context loads the CA bundle (tens of ms); loopback tests make many clients, so share one.
SSL_CONTEXT = ssl.create_default_context()


def fetch_token(base_url: str) -> str:
    """A bearer token from the sandbox via the client_credentials grant."""
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
        verify=SSL_CONTEXT,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def sandbox_token(sandbox: SandboxServer) -> str:
    return fetch_token(sandbox.base_url)
