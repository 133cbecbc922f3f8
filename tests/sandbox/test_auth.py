"""OAuth token grants, refresh rotation, bearer checks and token expiry."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox import SandboxServer

LISTS = "/api/v2/outbound/lists"
CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
PASSWORD = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "manager"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_client_credentials_grant_issues_a_working_bearer_token(shared_raw: httpx.Client) -> None:
    response = shared_raw.post("/oauth/token", data=CLIENT_CREDENTIALS)
    assert response.status_code == 200
    grant = response.json()
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] == 3600
    assert grant["scope"] == "*"
    assert grant["client_id"] == "sandbox"
    assert "refresh_token" not in grant
    assert shared_raw.get(LISTS, headers=bearer(grant["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "client",
    [{"client_id": "manager"}, {"client_id": "sandbox", "client_secret": "sandbox"}],
    ids=["public-manager", "confidential-sandbox"],
)
def test_password_grant_issues_access_and_refresh_tokens(shared_raw: httpx.Client, client: dict[str, str]) -> None:
    grant = shared_raw.post("/oauth/token", data={**PASSWORD, **client}).json()
    assert grant["refresh_token"]
    assert grant["client_id"] == client["client_id"]
    assert shared_raw.get(LISTS, headers=bearer(grant["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "nope"}, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "manager"}, "invalid_client"),
        ({"grant_type": "client_credentials"}, "invalid_request"),
        ({**PASSWORD, "password": "wrong"}, "invalid_grant"),
        ({**PASSWORD, "client_id": "sandbox"}, "invalid_client"),
        ({**PASSWORD, "client_id": "stranger"}, "invalid_client"),
        ({"grant_type": "password", "client_id": "manager"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "never-issued"}, "invalid_grant"),
    ],
)
def test_token_errors_are_oauth2_errors(shared_raw: httpx.Client, form: dict[str, str], error: str) -> None:
    response = shared_raw.post("/oauth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_a_token_parameter_sent_twice_is_invalid_request(shared_raw: httpx.Client) -> None:
    """RFC 6749 3.2: parameters must not repeat; last-one-wins hid a wrong secret behind a right one."""
    body = "grant_type=client_credentials&client_id=sandbox&client_secret=wrong&client_secret=sandbox"
    response = shared_raw.post(
        "/oauth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "client_secret" in response.json()["error_description"]


def test_a_refresh_token_is_bound_to_its_client(shared_raw: httpx.Client) -> None:
    """RFC 6749 6: another client cannot redeem it, and a confidential client must send its secret.

    A refused attempt does not use the token up: its owner can still refresh with it.
    """
    confidential = shared_raw.post(
        "/oauth/token", data={**PASSWORD, "client_id": "sandbox", "client_secret": "sandbox"}
    )
    refresh = {"grant_type": "refresh_token", "refresh_token": confidential.json()["refresh_token"]}
    without_secret = shared_raw.post("/oauth/token", data={**refresh, "client_id": "sandbox"})
    assert without_secret.status_code == 400
    assert without_secret.json()["error"] == "invalid_client"
    by_other_client = shared_raw.post("/oauth/token", data={**refresh, "client_id": "manager"})
    assert by_other_client.status_code == 400
    assert by_other_client.json()["error"] == "invalid_grant"
    owner = shared_raw.post("/oauth/token", data={**refresh, "client_id": "sandbox", "client_secret": "sandbox"})
    assert owner.status_code == 200
    assert owner.json()["client_id"] == "sandbox"


def test_token_request_must_be_form_encoded(shared_raw: httpx.Client) -> None:
    response = shared_raw.post("/oauth/token", json=CLIENT_CREDENTIALS)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_refresh_tokens_rotate_and_a_used_one_is_refused(shared_raw: httpx.Client) -> None:
    first = shared_raw.post("/oauth/token", data=PASSWORD).json()
    second = shared_raw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["client_id"] == "manager"
    assert shared_raw.get(LISTS, headers=bearer(rotated["access_token"])).status_code == 200

    reused = shared_raw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    again = shared_raw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic c2FuZGJveDpzYW5kYm94"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_api_refuses_requests_without_a_valid_bearer_token(shared_raw: httpx.Client, headers: dict[str, str]) -> None:
    response = shared_raw.get(LISTS, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["success"] is False
    assert response.json()["message"]


def test_old_access_id_header_pair_is_refused(shared_raw: httpx.Client) -> None:
    response = shared_raw.get(LISTS, headers={"X-Auth-Access-Id": "id", "X-Auth-Access-Token": "token"})
    assert response.status_code == 401
    assert "X-Auth-Access-Id" in response.json()["message"]


def test_access_token_expires_after_its_ttl(sandbox_factory) -> None:
    server: SandboxServer = sandbox_factory(seed="empty", token_ttl=1)
    with httpx.Client(base_url=server.base_url) as client:
        grant = client.post("/oauth/token", data=CLIENT_CREDENTIALS).json()
        assert grant["expires_in"] == 1
        assert client.get(LISTS, headers=bearer(grant["access_token"])).status_code == 200
        time.sleep(1.1)
        expired = client.get(LISTS, headers=bearer(grant["access_token"]))
        assert expired.status_code == 401
        assert "expired" in expired.json()["message"]


def test_sandbox_expire_endpoint_expires_access_tokens_but_not_refresh_tokens(raw: httpx.Client) -> None:
    grant = raw.post("/oauth/token", data=PASSWORD).json()
    assert raw.get(LISTS, headers=bearer(grant["access_token"])).status_code == 200

    expired = raw.post("/sandbox/tokens/expire")
    assert expired.status_code == 200
    assert expired.json()["expired"] >= 1
    assert raw.get(LISTS, headers=bearer(grant["access_token"])).status_code == 401

    refreshed = raw.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]})
    assert refreshed.status_code == 200
    assert raw.get(LISTS, headers=bearer(refreshed.json()["access_token"])).status_code == 200


def test_sandbox_controls_need_no_auth(shared_raw: httpx.Client) -> None:
    assert shared_raw.get("/sandbox/stats").status_code == 200
    assert shared_raw.get("/sandbox/faults").status_code == 200
