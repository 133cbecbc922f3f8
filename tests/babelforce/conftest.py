"""Fixtures for the client's tests: clients wired to the running sandbox (the sandbox and its `control` endpoints
are tests/conftest.py's)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from babelforce import BabelforceClient, Timeouts
from tests.support import FAST_RETRY, SANDBOX_CLIENT

TEST_TIMEOUTS = Timeouts(connect=2.0, read=5.0, deadline=8.0)


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
