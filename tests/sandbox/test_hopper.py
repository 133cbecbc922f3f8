"""The live hopper over HTTP: the help article's examples, list orders, refill rules and simulated dialling."""

from __future__ import annotations

import uuid

import httpx
import pytest

from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST_ID, RENEWALS_CAMPAIGN_ID

CAMPAIGNS = "/api/v2/outbound/campaigns"
DEMO_HOPPER = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/hopper"
DEMO_LEADS = f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads"
DIAL = f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial"


def hopper_uids(api: httpx.Client, path: str = DEMO_HOPPER) -> list[str]:
    items = api.get(path).json()["items"]
    assert [item["order"] for item in items] == [str(n) for n in range(1, len(items) + 1)]
    return [item["uid"] for item in items]


def lead_id(sandbox: SandboxServer, uid: str, list_id: str = DEMO_LIST_ID) -> str:
    with sandbox.state.lock:
        return sandbox.state.lists[list_id].ids_by_uid[uid]


def test_demo_hopper_holds_the_20_highest_ranked_leads(api: httpx.Client) -> None:
    items = api.get(DEMO_HOPPER).json()["items"]
    assert [item["uid"] for item in items] == [f"lead-{n}" for n in range(50, 30, -1)]
    first = items[0]
    assert first == {
        "id": first["id"],
        "uid": "lead-50",
        "listId": DEMO_LIST_ID,
        "number": "+4915100000050",
        "status": "pending",
        "order": "1",
        "count": "0",
        "source": "list",
    }
    assert all(isinstance(value, str) for item in items for value in item.values())


def test_updating_a_lead_in_the_hopper_does_not_move_it(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Article example 1: the lead ranked 40 is already loaded; its update is not taken into account."""
    before = api.get(DEMO_HOPPER).json()["items"]
    updated = api.put(f"{DEMO_LEADS}/{lead_id(sandbox, 'lead-40')}", json={"rank": 1, "number": "+4915199999999"})
    assert updated.json()["item"]["rank"] == 1
    assert api.get(DEMO_HOPPER).json()["items"] == before  # same place, same snapshot (old number)


def test_a_lead_raised_outside_the_hopper_waits_for_the_next_batch(sandbox: SandboxServer, api) -> None:
    """Article example 2: lead-10 goes from rank 10 to 100: not in this batch, first of the next one."""
    api.put(f"{DEMO_LEADS}/{lead_id(sandbox, 'lead-10')}", json={"rank": 100})
    assert "lead-10" not in hopper_uids(api)
    dialled = api.post(DIAL, json={"count": 20}).json()["items"]
    assert [lead["uid"] for lead in dialled] == [f"lead-{n}" for n in range(50, 30, -1)]
    items = api.get(DEMO_HOPPER).json()["items"]
    assert items[0]["uid"] == "lead-10"
    assert items[0]["order"] == "1"
    assert [item["uid"] for item in items[1:]] == [f"lead-{n}" for n in range(30, 11, -1)]


def test_a_new_high_ranked_lead_waits_while_the_hopper_is_full(api: httpx.Client) -> None:
    api.post(DEMO_LEADS, json={"uid": "vip", "number": "+4915122222222", "rank": 32767})
    assert "vip" not in hopper_uids(api)
    api.post(DIAL)  # one dial frees one place: the refill takes the best waiting lead
    assert hopper_uids(api)[-1] == "vip"


def test_deleting_a_loaded_lead_keeps_its_hopper_entry_until_it_is_dialled(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    """The conservative model (the spec does not say): a loaded batch keeps the deleted lead and may still call it;
    no later batch does."""
    before = api.get(DEMO_HOPPER).json()["items"]
    gone = lead_id(sandbox, "lead-45")
    assert api.delete(f"{DEMO_LEADS}/{gone}").status_code == 200

    assert api.get(f"{DEMO_LEADS}/{gone}").status_code == 404
    assert api.get(DEMO_HOPPER).json()["items"] == before  # same entry, same place (6 of 20), nothing refilled
    dial = api.post(DIAL, json={"count": 6}).json()
    assert [lead["uid"] for lead in dial["items"]] == ["lead-50", "lead-49", "lead-48", "lead-47", "lead-46"]
    assert dial["removedCalled"] == [{"id": gone, "uid": "lead-45", "number": "+4915100000045"}]
    uids = hopper_uids(api)
    assert "lead-45" not in uids and len(uids) == 20
    assert uids[-6:] == ["lead-30", "lead-29", "lead-28", "lead-27", "lead-26", "lead-25"]
    status = api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status").json()["item"]
    assert status["campaignCallStats"] == {"calls": 6}  # the deleted lead was called too
    assert status["campaignLeadStats"] == {"total": 49, "dialable": 44, "inHopper": 20}


@pytest.mark.parametrize("path", ["delete", "bulk/delete"])
def test_bulk_deleting_loaded_leads_keeps_their_entries_too(api: httpx.Client, path: str) -> None:
    before = api.get(DEMO_HOPPER).json()["items"]
    deleted = api.post(f"{DEMO_LEADS}/{path}", json={"uids": ["lead-50", "lead-10"]}).json()
    assert deleted["message"] == "Deleted 2 leads"
    assert api.get(DEMO_HOPPER).json()["items"] == before
    dial = api.post(DIAL, json={"count": 1}).json()
    assert (dial["items"], [entry["uid"] for entry in dial["removedCalled"]]) == ([], ["lead-50"])


def test_deleting_a_lead_outside_the_hopper_leaves_the_hopper_as_it_was(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    before = hopper_uids(api)
    api.delete(f"{DEMO_LEADS}/{lead_id(sandbox, 'lead-30')}")  # next in line, not loaded
    assert hopper_uids(api) == before
    api.post(DIAL, json={"count": 1})
    assert hopper_uids(api) == [*before[1:], "lead-29"]  # the refill skips the deleted lead


def test_a_deleted_loaded_lead_added_again_is_a_new_lead_beside_its_old_entry(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    old = lead_id(sandbox, "lead-31")
    api.delete(f"{DEMO_LEADS}/{old}")
    again = api.post(DEMO_LEADS, json={"uid": "lead-31", "number": "+4915100000031", "rank": 31}).json()["item"]
    assert again["id"] != old and again["status"] == "pending" and again["callCount"] == 0
    items = api.get(DEMO_HOPPER).json()["items"]
    assert (items[-1]["id"], items[-1]["uid"]) == (old, "lead-31")  # the old entry, still loaded
    dial = api.post(DIAL, json={"count": 20}).json()
    assert [entry["id"] for entry in dial["removedCalled"]] == [old]
    assert hopper_uids(api)[0] == "lead-31"  # the new lead, loaded by the next batch
    assert api.get(DEMO_HOPPER).json()["items"][0]["id"] == again["id"]


def test_clearing_the_list_empties_the_hopper(api: httpx.Client) -> None:
    api.delete(DEMO_LEADS)
    assert hopper_uids(api) == []
    api.post(DEMO_LEADS, json={"uid": "fresh", "number": "+4915133333333", "rank": 1})
    assert hopper_uids(api) == ["fresh"]


def make_campaign(api: httpx.Client, list_order: str, ranks: list[int], active: bool = True) -> str:
    list_id = api.post("/api/v2/outbound/lists", json={"name": f"order {uuid.uuid4().hex}"}).json()["item"]["id"]
    for index, rank in enumerate(ranks, start=1):
        api.post(
            f"/api/v2/outbound/lists/{list_id}/leads",
            json={"uid": f"u{index}", "number": "+491510000000", "rank": rank},
        )
    campaign = {
        "name": list_order,
        "active": active,
        "testMode": True,
        "displayNumber": "+4930000000",
        "listOrder": list_order,
    }
    campaign_id = api.post(CAMPAIGNS, json=campaign).json()["item"]["id"]
    api.put(f"{CAMPAIGNS}/{campaign_id}/list", json={"listId": list_id})
    return campaign_id


@pytest.mark.parametrize(
    ("list_order", "expected"),
    [
        ("UP", ["u6", "u5", "u4", "u3"]),  # last loaded first
        ("DOWN", ["u1", "u2", "u3", "u4"]),  # first loaded first
        ("UP RANK", ["u2", "u5", "u6", "u1"]),  # highest rank first, ties in insertion order
        ("DOWN RANK", ["u3", "u1", "u4", "u6"]),  # lowest rank first, ties in insertion order
    ],
)
def test_each_list_order(api_factory, list_order: str, expected: list[str]) -> None:
    api = api_factory(seed="empty", hopper_size=4)
    campaign_id = make_campaign(api, list_order, ranks=[5, 9, -3, 5, 9, 7])
    assert hopper_uids(api, f"{CAMPAIGNS}/{campaign_id}/hopper") == expected


def test_rank_changes_do_not_matter_under_up_and_down(api_factory) -> None:
    api = api_factory(seed="empty", hopper_size=2)
    campaign_id = make_campaign(api, "DOWN", ranks=[1, 1, 1, 1])
    list_id = api.get(f"{CAMPAIGNS}/{campaign_id}/list").json()["item"]["id"]
    leads = api.get(f"/api/v2/outbound/lists/{list_id}/leads").json()["items"]
    api.put(f"/api/v2/outbound/lists/{list_id}/leads/{leads[3]['id']}", json={"rank": 1000})
    api.post(f"/sandbox/campaigns/{campaign_id}/dial", json={"count": 2})
    assert hopper_uids(api, f"{CAMPAIGNS}/{campaign_id}/hopper") == ["u3", "u4"]


def test_leads_with_a_final_status_are_never_loaded(sandbox: SandboxServer, api: httpx.Client) -> None:
    with sandbox.state.lock:
        for n, status in ((1, "sale"), (2, "do_not_call"), (3, "not_interested"), (4, "callback"), (5, "new")):
            sandbox.state.lists[DEMO_LIST_ID].leads[lead_id(sandbox, f"lead-{n}")].status = status
    api.post(DIAL, json={"count": 20})
    api.post(DIAL, json={"count": 20})
    assert hopper_uids(api) == ["lead-10", "lead-9", "lead-8", "lead-7", "lead-6", "lead-5", "lead-4"]
    api.post(DIAL, json={"count": 20})
    assert hopper_uids(api) == []  # dialled leads are not loaded again; final statuses never


def test_refill_happens_only_below_the_minimum(sandbox_factory) -> None:
    server: SandboxServer = sandbox_factory(hopper_size=5)
    with httpx.Client(base_url=server.base_url) as client:
        assert [entry.uid for entry in server.state.hopper(DEMO_CAMPAIGN_ID)] == [
            f"lead-{n}" for n in range(50, 45, -1)
        ]
        server.state.add_lead(DEMO_LIST_ID, "top", "+4915144444444", 999)
        assert "top" not in [entry.uid for entry in server.state.hopper(DEMO_CAMPAIGN_ID)]
        client.post(DIAL, json={"count": 2})
        uids = [entry.uid for entry in server.state.hopper(DEMO_CAMPAIGN_ID)]
        assert uids == ["lead-48", "lead-47", "lead-46", "top", "lead-45"]


def test_dial_records_the_outcome(sandbox: SandboxServer, raw: httpx.Client) -> None:
    response = raw.post(DIAL)
    assert response.status_code == 200
    [lead] = response.json()["items"]
    assert lead["uid"] == "lead-50"
    assert lead["status"] == "no_answer"
    assert lead["callCount"] == 1
    assert lead["calledSinceReset"] is True
    assert lead["dateCalled"] == lead["lastUpdated"]
    busy = raw.post(DIAL, json={"count": 2, "status": "busy"}).json()["items"]
    assert [(lead["uid"], lead["status"]) for lead in busy] == [("lead-49", "busy"), ("lead-48", "busy")]
    status = sandbox.state.lead_stats(DEMO_CAMPAIGN_ID)
    assert status == {"total": 50, "dialable": 47, "inHopper": 20}


@pytest.mark.parametrize("body", [{"count": 0}, {"count": "2"}, {"count": True}, {"status": "great"}])
def test_dial_rejects_bad_values(shared_raw: httpx.Client, body: dict) -> None:
    response = shared_raw.post(DIAL, json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(next(iter(body)))


def test_dial_unknown_campaign_is_404(shared_raw: httpx.Client) -> None:
    assert shared_raw.post(f"/sandbox/campaigns/{uuid.uuid4().hex}/dial").status_code == 404


def test_deactivating_empties_the_hopper_and_activating_refills_it(api: httpx.Client) -> None:
    assert api.put(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}", json={"active": False}).status_code == 201
    assert hopper_uids(api) == []
    api.put(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}", json={"active": True})
    assert hopper_uids(api)[0] == "lead-50"


def test_list_order_change_keeps_a_full_hopper(api: httpx.Client) -> None:
    api.put(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}", json={"listOrder": "DOWN RANK"})
    assert hopper_uids(api)[0] == "lead-50"
    api.post(DIAL, json={"count": 20})
    assert hopper_uids(api)[:3] == ["lead-1", "lead-2", "lead-3"]


def test_unsetting_and_changing_the_list_resets_the_hopper(api: httpx.Client) -> None:
    unset = api.delete(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/list")
    assert unset.status_code == 200
    assert "leadList" not in unset.json()["item"]
    assert hopper_uids(api) == []
    assert api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/list").status_code == 404
    autumn = next(item for item in api.get("/api/v2/outbound/lists").json()["items"] if item["name"] == "Autumn leads")
    moved = api.put(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/list/{autumn['id']}")
    assert moved.json()["item"]["leadList"] == {"id": autumn["id"], "name": "Autumn leads"}
    assert hopper_uids(api)[:2] == ["autumn-10", "autumn-9"]


def test_campaign_status_reports_lead_and_call_stats(api: httpx.Client) -> None:
    api.post(DIAL, json={"count": 3})
    status = api.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status").json()["item"]
    assert status["order"] == "UP RANK"
    assert status["dial_method"] == "standard"
    assert status["dial_level"] == 1
    assert set(status["statuses"]) == {"pending", "new", "callback"}
    assert status["campaignLeadStats"] == {"total": 50, "dialable": 47, "inHopper": 20}
    assert status["campaignCallStats"] == {"calls": 3}
    renewals = api.get(f"{CAMPAIGNS}/{RENEWALS_CAMPAIGN_ID}/status").json()["item"]
    assert renewals["campaignLeadStats"] == {"total": 10, "dialable": 10, "inHopper": 10}


def json_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in json_keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in json_keys(item)}
    return set()


def test_the_hopper_size_is_not_exposed_by_the_api(shared_api: httpx.Client) -> None:
    paths = [CAMPAIGNS, f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}", f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status", DEMO_HOPPER]
    keys = set().union(*(json_keys(shared_api.get(path).json()) for path in paths))
    assert not [key for key in keys if "size" in key.lower() or "min" in key.lower()]
