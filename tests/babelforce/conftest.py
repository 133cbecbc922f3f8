"""Fixtures for the client's tests: a client wired to the running sandbox, and the sandbox's control endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from babelforce import BabelforceClient, ClientCredentials, RetryPolicy, Timeouts

SANDBOX_CLIENT = ClientCredentials("sandbox", SecretStr("sandbox"))
#: Fast backoff so retry tests take milliseconds; the deadline still bounds every call.
FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.5)
TEST_TIMEOUTS = Timeouts(connect=2.0, read=5.0, deadline=8.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SandboxControl:
    """The sandbox's own endpoints (faults, stats, dialling), called with plain httpx."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=10)

    def faults(self, *rules: dict[str, Any]) -> None:
        self._http.post("/sandbox/faults", json=list(rules)).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete("/sandbox/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self._http.get("/sandbox/stats").json()

    def reset_stats(self) -> None:
        self._http.delete("/sandbox/stats").raise_for_status()

    def count(self, route: str) -> int:
        return self.stats()["byRoute"].get(route, 0)

    def expire_tokens(self) -> None:
        self._http.post("/sandbox/tokens/expire").raise_for_status()

    def dial(self, campaign_id: str, count: int, status: str = "no_answer") -> list[dict[str, Any]]:
        response = self._http.post(f"/sandbox/campaigns/{campaign_id}/dial", json={"count": count, "status": status})
        response.raise_for_status()
        return response.json()["items"]

    def token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        return self._http.post("/oauth/token", data=form).json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self._http.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self._http.close()


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
