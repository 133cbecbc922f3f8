"""Every implemented operation, success and main error paths, validated against the OpenAPI contract."""

from __future__ import annotations

import uuid

import httpx
import jsonschema
import pytest

from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID
from tests.contract import SPEC_PATH, spec_available, validate_response

pytestmark = pytest.mark.skipif(not spec_available(), reason=f"OpenAPI spec not found at {SPEC_PATH}")

LISTS = "/api/v2/outbound/lists"
CAMPAIGNS = "/api/v2/outbound/campaigns"
UNKNOWN = uuid.uuid4().hex


def checked(response: httpx.Response, status: int) -> dict:
    """Assert the status, validate the body against the spec for this operation and status, return it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"  # the spec documents JSON, not just a JSON body
    body = response.json()
    validate_response(response.request.method, response.request.url.path, status, body)
    return body


def test_validator_catches_a_missing_required_property() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", LISTS, 200, {"items": [{"id": DEMO_LIST_ID, "name": "x"}], "success": True})
    with pytest.raises(jsonschema.ValidationError):
        validate_response(
            "GET", f"{LISTS}/{DEMO_LIST_ID}", 200, {"item": {"id": "not-a-uuid", "name": "x"}, "success": True}
        )
    with pytest.raises(AssertionError, match="does not document"):
        validate_response("POST", CAMPAIGNS, 200, {})


def test_validator_checks_formats_and_enums() -> None:
    lead_path = f"{LISTS}/{DEMO_LIST_ID}/leads/{UNKNOWN}"
    lead = {"id": UNKNOWN, "number": "+4915100000001", "dateCreated": "2026-11-26T16:58:13Z", "status": "pending"}
    validate_response("GET", lead_path, 200, {"item": lead, "success": True})
    for bad in ({"dateCreated": "2026-11-26 16:58:13"}, {"dateCreated": "2026-02-30T00:00:00Z"}, {"status": None}):
        with pytest.raises(jsonschema.ValidationError):
            validate_response("GET", lead_path, 200, {"item": {**lead, **bad}, "success": True})


def test_token_operation(shared_raw: httpx.Client) -> None:
    form = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "manager"}
    refresh_token = checked(shared_raw.post("/oauth/token", data=form), 200)["refresh_token"]
    checked(shared_raw.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}), 200)
    client = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
    checked(shared_raw.post("/oauth/token", data=client), 200)
    checked(shared_raw.post("/oauth/token", data={**form, "password": "x"}), 400)
    checked(shared_raw.post("/oauth/token", data={"grant_type": "implicit"}), 400)


def test_list_operations(sandbox: SandboxServer, api: httpx.Client) -> None:
    checked(api.get(LISTS), 200)
    created = checked(api.post(LISTS, json={"name": "Contract"}), 200)["item"]
    path = f"{LISTS}/{created['id']}"
    checked(api.get(path), 200)
    checked(api.get(f"{LISTS}/{DEMO_LIST_ID}"), 200)
    checked(api.put(path, json={"name": "Contract 2"}), 200)
    checked(api.post(LISTS, json={}), 400)
    checked(api.post(LISTS, json={"name": "contract 2"}), 409)
    checked(api.put(path, json={"name": ""}), 400)
    checked(api.get(f"{LISTS}/{UNKNOWN}"), 404)
    checked(api.put(f"{LISTS}/{UNKNOWN}", json={"name": "x"}), 404)
    checked(api.delete(path), 200)
    checked(api.delete(path), 404)
    checked(api.get(LISTS, headers={"Authorization": "Bearer nope"}), 401)


def test_lead_operations(sandbox: SandboxServer, api: httpx.Client) -> None:
    leads = f"{LISTS}/{DEMO_LIST_ID}/leads"
    added = checked(api.post(leads, json={"uid": "c-1", "number": "+4915100001111", "rank": 3, "data": {"a": 1}}), 200)
    lead_path = f"{leads}/{added['item']['id']}"
    checked(api.get(lead_path), 200)
    checked(api.put(lead_path, json={"rank": 9, "data": {"a": None, "b": "x"}}), 200)
    checked(api.put(lead_path, json={"rank": 40000}), 400)
    checked(api.put(lead_path, json={"uid": "lead-3"}), 409)
    checked(api.put(f"{leads}/{UNKNOWN}", json={"rank": 1}), 404)
    checked(api.post(leads, json={"uid": "c-1", "number": "+4915100001111", "rank": 3}), 409)
    checked(api.post(leads, json={"uid": "c-2", "number": "+4915100001111"}), 400)
    checked(api.get(leads, params={"max": 5, "page": 2}), 200)
    checked(api.get(leads, params={"page": 0}), 400)
    checked(api.get(leads, params={"status": "happy"}), 400)
    checked(api.get(f"{LISTS}/{UNKNOWN}/leads"), 404)
    checked(api.post(f"{LISTS}/{UNKNOWN}/leads", json={"uid": "c-3", "number": "+4915100001111", "rank": 1}), 404)
    checked(api.get("/api/v2/outbound/leads"), 200)
    checked(api.get("/api/v2/outbound/leads", params={"listId": AUTUMN_LIST_ID, "status": "pending"}), 200)
    checked(api.get("/api/v2/outbound/leads", params={"max": "x"}), 400)
    checked(api.get(f"{leads}/{UNKNOWN}"), 404)
    checked(api.delete(f"{leads}/{UNKNOWN}"), 404)
    assert api.post(f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial", json={"count": 2}).status_code == 200
    checked(api.get(leads, params={"status": "no_answer"}), 200)  # dialled leads carry dateCalled
    checked(api.post(f"{leads}/delete", json={"uids": ["lead-1"]}), 200)
    checked(api.post(f"{leads}/bulk/delete", json={"ids": [added["item"]["id"]]}), 200)
    checked(api.post(f"{leads}/delete", json={}), 400)
    checked(api.delete(f"{leads}/{sandbox.state.lists[DEMO_LIST_ID].ids_by_uid['lead-2']}"), 200)
    checked(api.delete(leads), 200)

    csv = api.get(f"{LISTS}/{AUTUMN_LIST_ID}/leads", params={"format": "csv"})
    assert csv.status_code == 200
    assert csv.headers["Content-Type"].startswith("text/csv")
    validate_response("GET", csv.request.url.path, 200, csv.text, content_type="text/csv")


def test_campaign_operations(api: httpx.Client) -> None:
    checked(api.get(CAMPAIGNS), 200)
    body = {"name": "C", "active": True, "testMode": True, "displayNumber": "+4930000001", "listOrder": "DOWN"}
    created = checked(api.post(CAMPAIGNS, json=body), 201)["item"]
    assert "leadList" not in created
    path = f"{CAMPAIGNS}/{created['id']}"
    checked(api.post(CAMPAIGNS, json={**body, "callRatio": 5}), 400)
    checked(api.get(path), 200)
    checked(api.put(path, json={"callRatio": 2.5, "listOrder": "UP"}), 201)
    checked(api.put(path, json={"listOrder": "SIDEWAYS"}), 400)
    checked(api.put(f"{CAMPAIGNS}/{UNKNOWN}", json={"active": False}), 404)
    checked(api.get(f"{path}/list"), 404)
    checked(api.put(f"{path}/list", json={"listId": AUTUMN_LIST_ID}), 200)
    checked(api.get(f"{path}/list"), 200)
    checked(api.put(f"{path}/list", json={}), 400)
    checked(api.put(f"{path}/list", json={"listId": UNKNOWN}), 404)
    checked(api.put(f"{path}/list/{UNKNOWN}"), 404)
    checked(api.get(f"{path}/hopper"), 200)
    checked(api.get(f"{path}/status"), 200)
    checked(api.delete(f"{path}/list"), 200)
    checked(api.put(f"{path}/list/{AUTUMN_LIST_ID}"), 200)
    checked(api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/hopper"), 200)
    checked(api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status"), 200)
    checked(api.get(f"{path}/statistics"), 200)
    checked(api.get(f"{CAMPAIGNS}/{UNKNOWN}/hopper"), 404)
    checked(api.get(f"{CAMPAIGNS}/{UNKNOWN}/status"), 404)
    checked(api.get(f"{CAMPAIGNS}/{UNKNOWN}/statistics"), 404)
    checked(api.delete(path), 200)
    checked(api.get(path), 404)
    checked(api.delete(path), 404)
    checked(api.get(f"{path}/status"), 404)


def test_campaign_status_and_statistics_after_dials(api: httpx.Client) -> None:
    """The free-form figures and the per-agent strings still fit the spec once dials, outcomes and agents exist."""
    agents = f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/agents"
    assert api.put(agents, json={"agents": ["anna", "ben"]}).status_code == 200
    dial = f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial"
    assert api.post(dial, json={"count": 2, "status": "sale", "agent": "anna", "talk_s": 30}).status_code == 200
    assert api.post(dial, json={"count": 3, "status": "busy"}).status_code == 200
    status = checked(api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status"), 200)["item"]
    assert status["campaignCallStats"]["outcomes"] == {"busy": 3, "sale": 2}
    path = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/statistics"
    items = checked(api.get(path), 200)["items"]
    assert [item["agent"] for item in items] == ["anna", "ben"]
    checked(api.get(path, params={"from": 0, "to": 4102444800}), 200)
    checked(api.get(path, params={"from": "yesterday"}), 400)
    checked(api.get(path, params={"from": 20, "to": 10}), 400)
