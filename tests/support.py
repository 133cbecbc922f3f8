"""Test helpers shared across test packages (not fixtures)."""

from __future__ import annotations

from typing import Any

import httpx


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
