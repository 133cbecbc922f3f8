"""Lists and leads: validation rules, partial updates with data merge, deletes, ids (dashed ones 404)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID

LISTS = "/api/v2/outbound/lists"
DEMO_LEADS = f"{LISTS}/{DEMO_LIST_ID}/leads"
AUTUMN_LEADS = f"{LISTS}/{AUTUMN_LIST_ID}/leads"
VALID_LEAD = {"uid": "crm-1", "number": "+4915112345678", "rank": 7}


def lead_id(sandbox: SandboxServer, list_id: str, uid: str) -> str:
    with sandbox.state.lock:
        return sandbox.state.lists[list_id].ids_by_uid[uid]


def dashed_upper(hex_id: str) -> str:
    return str(uuid.UUID(hex_id)).upper()


# ---- lists -------------------------------------------------------------------------------------------------


def test_lists_show_counts_and_the_dialling_campaign(shared_api: httpx.Client) -> None:
    lists = {item["name"]: item for item in shared_api.get(LISTS).json()["items"]}
    assert lists["Spring leads"]["count"] == 50
    assert lists["Spring leads"]["number"] == 50
    assert lists["Spring leads"]["campaignId"] == DEMO_CAMPAIGN_ID
    assert "campaignId" not in lists["Autumn leads"]


def test_create_rename_and_delete_a_list(api: httpx.Client) -> None:
    created = api.post(LISTS, json={"name": "Winter leads"})
    assert created.status_code == 200
    item = created.json()["item"]
    assert (item["name"], item["count"], item["number"]) == ("Winter leads", 0, 0)
    assert len(item["id"]) == 32

    renamed = api.put(f"{LISTS}/{item['id']}", json={"name": "Winter 2027"})
    assert renamed.status_code == 200
    assert api.get(f"{LISTS}/{item['id']}").json()["item"]["name"] == "Winter 2027"

    assert api.delete(f"{LISTS}/{item['id']}").status_code == 200
    assert api.get(f"{LISTS}/{item['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"), [({}, "name is required"), ({"name": "  "}, "name must be"), ({"name": 3}, "name must be")]
)
def test_create_list_needs_a_name(shared_api: httpx.Client, body: dict, message: str) -> None:
    response = shared_api.post(LISTS, json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_list_names_are_unique_case_insensitively(shared_api: httpx.Client) -> None:
    response = shared_api.post(LISTS, json={"name": "SPRING LEADS"})
    assert response.status_code == 409
    assert shared_api.put(f"{LISTS}/{AUTUMN_LIST_ID}", json={"name": "spring leads"}).status_code == 409


def test_deleting_a_list_removes_its_leads_and_unsets_it_from_the_campaign(sandbox: SandboxServer, api) -> None:
    assert api.delete(f"{LISTS}/{DEMO_LIST_ID}").json()["item"]["id"] == DEMO_LIST_ID
    campaign = api.get(f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}").json()["item"]
    assert "leadList" not in campaign
    assert api.get(f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}/hopper").json()["items"] == []
    assert api.get("/api/v2/outbound/leads").json()["pagination"]["total"] == 20  # autumn + renewals remain
    assert api.get("/api/v2/outbound/leads", params={"listId": DEMO_LIST_ID}).status_code == 404


# ---- adding leads ------------------------------------------------------------------------------------------


def test_add_lead_stores_it_pending_with_its_number_as_sent(api: httpx.Client) -> None:
    response = api.post(AUTUMN_LEADS, json={**VALID_LEAD, "number": "4916098119998", "data": {"address": "x"}})
    assert response.status_code == 200
    item = response.json()["item"]
    assert item["status"] == "pending"
    assert item["callCount"] == 0
    assert item["number"] == "4916098119998"
    assert item["data"] == {"address": "x"}
    assert item["callerId"] == ""
    assert item["listId"] == AUTUMN_LIST_ID
    fetched = api.get(f"{AUTUMN_LEADS}/{item['id']}").json()["item"]
    assert fetched["uid"] == "crm-1"
    assert fetched["rank"] == 7


@pytest.mark.parametrize("field", ["uid", "number", "rank"])
def test_add_lead_requires_uid_number_and_rank(shared_api: httpx.Client, field: str) -> None:
    body = {key: value for key, value in VALID_LEAD.items() if key != field}
    response = shared_api.post(AUTUMN_LEADS, json=body)
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": f"{field} is required."}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uid": ""}, "uid"),
        ({"uid": 5}, "uid"),
        ({"number": "12345"}, "number"),
        ({"number": "+49 151 1234567"}, "number"),
        ({"number": "1234567890123456"}, "number"),
        ({"number": 4915112345678}, "number"),
        ({"rank": 32768}, "rank"),
        ({"rank": -32769}, "rank"),
        ({"rank": 1.5}, "rank"),
        ({"rank": "5"}, "rank"),
        ({"rank": True}, "rank"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"data": "text"}, "data"),
    ],
)
def test_add_lead_rejects_bad_values_naming_the_field(shared_api: httpx.Client, change: dict, field: str) -> None:
    response = shared_api.post(AUTUMN_LEADS, json={**VALID_LEAD, **change})
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"{field} must")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_json_numbers_are_refused_and_nothing_is_stored(
    sandbox: SandboxServer, api: httpx.Client, constant: bytes
) -> None:
    """Python's json takes NaN; stored in data it made this and every later listing of the lead a 500."""
    body = b'{"uid": "nan-1", "number": "+4915112345678", "rank": 1, "data": {"score": ' + constant + b"}}"
    response = api.post(AUTUMN_LEADS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"] == "The request body is not valid JSON."
    with sandbox.state.lock:
        assert "nan-1" not in sandbox.state.lists[AUTUMN_LIST_ID].ids_by_uid


def test_the_articles_trailing_slash_add_creates_the_lead(sandbox: SandboxServer, api: httpx.Client) -> None:
    """The article posts to `.../lists/:listId/leads/`; Starlette answered that with a bodiless 307 redirect."""
    response = api.post(f"{AUTUMN_LEADS}/", json=VALID_LEAD)
    assert response.status_code == 200
    assert response.json()["item"]["uid"] == VALID_LEAD["uid"]
    assert api.get(f"{AUTUMN_LEADS}/{response.json()['item']['id']}/").status_code == 200
    stats = api.get("/sandbox/stats").json()["byRoute"]
    assert stats["POST /api/v2/outbound/lists/{id}/leads"] == 1


def test_rank_range_bounds_are_accepted(api: httpx.Client) -> None:
    assert api.post(AUTUMN_LEADS, json={**VALID_LEAD, "uid": "low", "rank": -32768}).status_code == 200
    assert api.post(AUTUMN_LEADS, json={**VALID_LEAD, "uid": "high", "rank": 32767}).status_code == 200


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b""])
def test_add_lead_body_must_be_a_json_object(shared_api: httpx.Client, content: bytes) -> None:
    response = shared_api.post(AUTUMN_LEADS, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "body" in response.json()["message"]


def test_duplicate_uid_in_a_list_is_a_conflict(shared_api: httpx.Client) -> None:
    response = shared_api.post(AUTUMN_LEADS, json={**VALID_LEAD, "uid": "autumn-1"})
    assert response.status_code == 409
    assert response.json()["message"] == "A lead with uid autumn-1 already exists in this list."


def test_same_uid_is_fine_in_another_list(api: httpx.Client) -> None:
    assert api.post(DEMO_LEADS, json={**VALID_LEAD, "uid": "autumn-1"}).status_code == 200


def test_add_to_unknown_list_is_404(shared_api: httpx.Client) -> None:
    response = shared_api.post(f"{LISTS}/{uuid.uuid4().hex}/leads", json=VALID_LEAD)
    assert response.status_code == 404
    assert "not found" in response.json()["message"]


# ---- updating leads ----------------------------------------------------------------------------------------


def test_update_is_partial_and_merges_data_deleting_null_keys(sandbox: SandboxServer, api: httpx.Client) -> None:
    target = lead_id(sandbox, AUTUMN_LIST_ID, "autumn-3")
    with sandbox.state.lock:  # timestamps have 1 s resolution: start from an old one so the bump is visible
        sandbox.state.lists[AUTUMN_LIST_ID].leads[target].last_updated = "2020-01-01T00:00:00Z"
    before = api.get(f"{AUTUMN_LEADS}/{target}").json()["item"]
    api.put(f"{AUTUMN_LEADS}/{target}", json={"data": {"old data": "x", "keep": 1}})

    response = api.put(
        f"{AUTUMN_LEADS}/{target}",
        json={"rank": 200, "data": {"address": "martin mendalde", "new data": "new", "old data": None}, "bogus": 1},
    )
    assert response.status_code == 200
    item = response.json()["item"]
    assert item["rank"] == 200
    assert item["uid"] == before["uid"]
    assert item["number"] == before["number"]
    assert item["data"] == {**before["data"], "keep": 1, "address": "martin mendalde", "new data": "new"}
    assert "bogus" not in item
    assert item["lastUpdated"] > before["lastUpdated"] == "2020-01-01T00:00:00Z"


def test_update_can_change_uid_and_number(sandbox: SandboxServer, api: httpx.Client) -> None:
    target = lead_id(sandbox, AUTUMN_LIST_ID, "autumn-3")
    item = api.put(f"{AUTUMN_LEADS}/{target}", json={"uid": "crm-9", "number": "+4917000000001"}).json()["item"]
    assert (item["uid"], item["number"]) == ("crm-9", "+4917000000001")
    # the old uid is free again, the new one is taken
    assert api.post(AUTUMN_LEADS, json={**VALID_LEAD, "uid": "autumn-3"}).status_code == 200
    assert api.post(AUTUMN_LEADS, json={**VALID_LEAD, "uid": "crm-9"}).status_code == 409


def test_update_to_another_leads_uid_is_a_conflict(shared_sandbox: SandboxServer, shared_api) -> None:
    target = lead_id(shared_sandbox, AUTUMN_LIST_ID, "autumn-3")
    response = shared_api.put(f"{AUTUMN_LEADS}/{target}", json={"uid": "autumn-4"})
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"), [({"rank": 40000}, "rank"), ({"number": "abc"}, "number"), ({"uid": None}, "uid")]
)
def test_update_validates_like_add(shared_sandbox: SandboxServer, shared_api, change: dict, field: str) -> None:
    target = lead_id(shared_sandbox, AUTUMN_LIST_ID, "autumn-3")
    response = shared_api.put(f"{AUTUMN_LEADS}/{target}", json=change)
    assert response.status_code == 400
    assert response.json()["message"].startswith(field)


def test_a_lead_of_another_list_is_not_found(shared_sandbox: SandboxServer, shared_api: httpx.Client) -> None:
    spring_lead = lead_id(shared_sandbox, DEMO_LIST_ID, "lead-1")
    assert shared_api.get(f"{AUTUMN_LEADS}/{spring_lead}").status_code == 404
    assert shared_api.put(f"{AUTUMN_LEADS}/{spring_lead}", json={"rank": 1}).status_code == 404
    assert shared_api.delete(f"{AUTUMN_LEADS}/{spring_lead}").status_code == 404


# ---- deleting leads ----------------------------------------------------------------------------------------


def test_delete_lead(sandbox: SandboxServer, api: httpx.Client) -> None:
    target = lead_id(sandbox, AUTUMN_LIST_ID, "autumn-2")
    response = api.delete(f"{AUTUMN_LEADS}/{target}")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert api.get(f"{AUTUMN_LEADS}/{target}").status_code == 404
    assert api.get(f"{LISTS}/{AUTUMN_LIST_ID}").json()["item"]["count"] == 9


@pytest.mark.parametrize("path", ["delete", "bulk/delete"])
def test_bulk_delete_by_ids_and_by_uids(sandbox: SandboxServer, api: httpx.Client, path: str) -> None:
    ids = [lead_id(sandbox, AUTUMN_LIST_ID, "autumn-1"), lead_id(sandbox, AUTUMN_LIST_ID, "autumn-2").upper()]
    dashed = dashed_upper(lead_id(sandbox, AUTUMN_LIST_ID, "autumn-5"))  # not matched, as by babelforce
    by_ids = api.post(f"{AUTUMN_LEADS}/{path}", json={"ids": [*ids, dashed, uuid.uuid4().hex]})
    assert by_ids.json() == {"success": True, "message": "Deleted 2 leads"}
    by_uids = api.post(f"{AUTUMN_LEADS}/{path}", json={"uids": ["autumn-3", "autumn-4", "nobody"]})
    assert by_uids.json() == {"success": True, "message": "Deleted 2 leads"}
    assert api.get(f"{LISTS}/{AUTUMN_LIST_ID}").json()["item"]["count"] == 6


@pytest.mark.parametrize("body", [{}, {"ids": "x"}, {"uids": [1]}])
def test_bulk_delete_needs_ids_or_uids(shared_api: httpx.Client, body: dict) -> None:
    response = shared_api.post(f"{AUTUMN_LEADS}/delete", json=body)
    assert response.status_code == 400
    assert "ids" in response.json()["message"]


def test_clear_list_removes_all_leads(api: httpx.Client) -> None:
    response = api.delete(AUTUMN_LEADS)
    assert response.status_code == 200
    assert response.json()["item"]["count"] == 0
    assert api.get(AUTUMN_LEADS).json()["items"] == []


# ---- ids and paths -----------------------------------------------------------------------------------------


def test_ids_are_matched_in_any_case(shared_sandbox: SandboxServer, shared_api: httpx.Client) -> None:
    target = lead_id(shared_sandbox, DEMO_LIST_ID, "lead-7")
    response = shared_api.get(f"{LISTS}/{DEMO_LIST_ID.upper()}/leads/{target.upper()}")
    assert response.status_code == 200
    assert response.json()["item"]["id"] == target
    assert shared_api.get(f"{LISTS}/{DEMO_LIST_ID.upper()}").json()["item"]["id"] == DEMO_LIST_ID
    by_query = shared_api.get("/api/v2/outbound/leads", params={"listId": AUTUMN_LIST_ID.upper()})
    assert by_query.json()["pagination"]["total"] == 10


@pytest.mark.parametrize("spelling", [str, dashed_upper], ids=["dashed", "DASHED"])
def test_dashed_ids_are_not_matched_they_answer_404_as_babelforce_does(
    shared_sandbox: SandboxServer, shared_api: httpx.Client, spelling: Callable[[str], str]
) -> None:
    """babelforce's Go SDK (manager-sdk-go ids.go): the API does not match the hyphenated uuid form; a dashed id
    404s. Every route that takes an id in its path, and the listId filter, refuse it like an unknown id."""
    target = lead_id(shared_sandbox, DEMO_LIST_ID, "lead-7")
    dashed_list, dashed_lead = spelling(str(uuid.UUID(DEMO_LIST_ID))), spelling(str(uuid.UUID(target)))
    for path in (
        f"{LISTS}/{dashed_list}",
        f"{LISTS}/{dashed_list}/leads",
        f"{LISTS}/{DEMO_LIST_ID}/leads/{dashed_lead}",
        f"/api/v2/outbound/campaigns/{spelling(str(uuid.UUID(DEMO_CAMPAIGN_ID)))}/hopper",
    ):
        response = shared_api.get(path)
        assert response.status_code == 404, path
        assert response.json()["success"] is False
    by_query = shared_api.get("/api/v2/outbound/leads", params={"listId": dashed_list})
    assert by_query.status_code == 404
    assert by_query.json() == {"success": False, "message": f"Lead-list {dashed_list} not found."}
    update = shared_api.put(f"{LISTS}/{DEMO_LIST_ID}/leads/{dashed_lead}", json={"rank": 1})
    assert update.status_code == 404
    assert shared_api.get(f"{LISTS}/{DEMO_LIST_ID}/leads/{target}").json()["item"]["rank"] == 7  # unchanged


@pytest.mark.parametrize("bad_id", ["nope", "1234", pytest.param(uuid.uuid4().hex, id="unknown-id")])
def test_unknown_or_malformed_ids_are_404(shared_api: httpx.Client, bad_id: str) -> None:
    response = shared_api.get(f"{LISTS}/{bad_id}")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": f"Lead-list {bad_id} not found."}


def test_unknown_path_and_wrong_method_answer_json(shared_api: httpx.Client) -> None:
    missing = shared_api.get("/api/v2/outbound/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    wrong = shared_api.patch(LISTS)
    assert wrong.status_code == 405
    assert wrong.json()["success"] is False
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}
