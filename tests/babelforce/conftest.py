"""Fixtures for the client's tests: a client wired to the running sandbox, and the sandbox's control endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from babelforce import BabelforceClient, ClientCredentials, RetryPolicy, Timeouts
from tests.support import SandboxControl

SANDBOX_CLIENT = ClientCredentials("sandbox", SecretStr("sandbox"))
#: Fast backoff so retry tests take milliseconds; the deadline still bounds every call.
FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.5)
TEST_TIMEOUTS = Timeouts(connect=2.0, read=5.0, deadline=8.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def control(sandbox) -> SandboxControl:
    ctl = SandboxControl(sandbox.base_url)
    yield ctl
    ctl.close()


@pytest.fixture
async def make_client(sandbox) -> AsyncIterator[Callable[..., BabelforceClient]]:
    """Build clients against the sandbox (fast retries, short deadline); every one is closed at teardown."""
    made: list[BabelforceClient] = []

    def build(**overrides: Any) -> BabelforceClient:
        options: dict[str, Any] = {
            "base_url": sandbox.base_url,
            "credentials": SANDBOX_CLIENT,
            "timeouts": TEST_TIMEOUTS,
            "retry": FAST_RETRY,
        }
        options.update(overrides)
        made.append(BabelforceClient(**options))
        return made[-1]

    yield build
    for bf in made:
        await bf.aclose()


@pytest.fixture
def client(make_client) -> BabelforceClient:
    return make_client()


@pytest.fixture
def log_lines(caplog) -> Callable[[], list[str]]:
    caplog.set_level(logging.DEBUG)
    return lambda: [record.getMessage() for record in caplog.records]
