"""A campaign's real-time status and per-agent statistics follow the sandbox's own state: the leads and their
statuses, the hopper's fill, the dials made through /sandbox/campaigns/{id}/dial and the agents logged in."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from sandbox.seed import DEMO_CAMPAIGN_ID, RENEWALS_CAMPAIGN_ID

CAMPAIGNS = "/api/v2/outbound/campaigns"
STATUS = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/status"
STATISTICS = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}/statistics"
DIAL = f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial"
AGENTS = f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/agents"


def status_of(api: httpx.Client, path: str = STATUS) -> dict:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()["item"]


def test_a_fresh_campaign_reports_its_leads_and_no_calls(shared_api: httpx.Client) -> None:
    status = status_of(shared_api)
    assert status["order"] == "UP RANK"
    assert status["dial_method"] == "standard"
    assert status["dial_level"] == 1
    assert set(status["statuses"]) == {"pending", "new", "callback"}
    assert status["campaignLeadStats"] == {"total": 50, "dialable": 50, "inHopper": 20, "byStatus": {"pending": 50}}
    assert status["campaignCallStats"] == {"calls": 0, "outcomes": {}}
    assert status["campaignAgentStats"] == {"loggedIn": 0}
    renewals = status_of(shared_api, f"{CAMPAIGNS}/{RENEWALS_CAMPAIGN_ID}/status")
    assert renewals["campaignLeadStats"]["inHopper"] == 10
    assert renewals["order"] == "UP"


def test_dials_move_the_figures(api: httpx.Client) -> None:
    api.post(DIAL, json={"count": 3})
    api.post(DIAL, json={"count": 2, "status": "sale"})
    status = status_of(api)
    assert status["campaignLeadStats"] == {
        "total": 50,
        "dialable": 45,
        "inHopper": 20,
        "byStatus": {"no_answer": 3, "pending": 45, "sale": 2},
    }
    assert status["campaignCallStats"] == {"calls": 5, "outcomes": {"no_answer": 3, "sale": 2}}


def test_dialling_the_hopper_empty_leaves_nothing_dialable(api: httpx.Client) -> None:
    for _ in range(3):  # a dial takes at most the hopper's 20; it refills from the rest
        api.post(DIAL, json={"count": 20})
    status = status_of(api)
    assert status["campaignLeadStats"]["dialable"] == 0
    assert status["campaignLeadStats"]["inHopper"] == 0
    assert status["campaignCallStats"]["calls"] == 50


def test_a_stopped_campaign_has_an_empty_hopper_in_its_status(api: httpx.Client) -> None:
    api.put(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_ID}", json={"active": False})
    assert status_of(api)["campaignLeadStats"]["inHopper"] == 0


def test_no_agent_no_statistics(shared_api: httpx.Client) -> None:
    response = shared_api.get(f"{CAMPAIGNS}/{RENEWALS_CAMPAIGN_ID}/statistics")
    assert response.status_code == 200
    assert response.json() == {"items": [], "success": True}


def test_agents_get_the_talk_time_of_their_calls(api: httpx.Client) -> None:
    before = int(time.time())
    assert api.put(AGENTS, json={"agents": ["anna", "ben"]}).status_code == 200
    api.post(DIAL, json={"count": 2, "status": "sale", "agent": "anna", "talk_s": 45})
    status = status_of(api)
    assert status["campaignAgentStats"] == {"loggedIn": 2}
    items = api.get(STATISTICS).json()["items"]
    anna, ben = items
    assert anna["agent"] == "anna" and anna["talk_in_seconds"] == "90" and anna["pause_in_seconds"] == "0"
    assert ben["talk_in_seconds"] == "0"
    assert all(isinstance(value, str) for item in items for value in item.values())  # the spec's strings
    assert anna["login_at"].endswith("Z")
    # ben logs out: he stays in the statistics of the range he worked in, and no longer counts as logged in
    api.put(AGENTS, json={"agents": ["anna"]})
    assert status_of(api)["campaignAgentStats"] == {"loggedIn": 1}
    assert [item["agent"] for item in api.get(STATISTICS, params={"from": before}).json()["items"]] == ["anna", "ben"]
    assert api.get(STATISTICS, params={"to": before - 3600}).json()["items"] == []


def test_a_dial_by_an_agent_not_logged_in_is_refused(api: httpx.Client) -> None:
    response = api.post(DIAL, json={"count": 1, "agent": "zoe"})
    assert response.status_code == 400
    assert "zoe" in response.json()["message"]
    assert status_of(api)["campaignCallStats"]["calls"] == 0  # refused before anything was dialled


@pytest.mark.parametrize(
    "params, field", [({"from": "x"}, "from"), ({"to": "-5"}, "to"), ({"from": 30, "to": 20}, "from")]
)
def test_bad_ranges_name_the_parameter(shared_api: httpx.Client, params: dict, field: str) -> None:
    response = shared_api.get(STATISTICS, params=params)
    assert response.status_code == 400
    assert response.json()["message"].startswith(field)


@pytest.mark.parametrize("body", [{"agents": "anna"}, {"agents": [""]}, {}, {"agents": [3]}])
def test_agent_logins_must_be_names(shared_raw: httpx.Client, body: dict) -> None:
    response = shared_raw.put(AGENTS, json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("agents")


@pytest.mark.parametrize("body", [{"talk_s": -1}, {"talk_s": "30"}, {"agent": ""}])
def test_dial_refuses_bad_agent_fields(shared_raw: httpx.Client, body: dict) -> None:
    response = shared_raw.post(DIAL, json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(next(iter(body)))


def test_unknown_campaigns_are_404(shared_api: httpx.Client, shared_raw: httpx.Client) -> None:
    unknown = uuid.uuid4().hex
    assert shared_api.get(f"{CAMPAIGNS}/{unknown}/statistics").status_code == 404
    assert shared_raw.put(f"/sandbox/campaigns/{unknown}/agents", json={"agents": []}).status_code == 404


def test_status_and_statistics_need_a_token(shared_raw: httpx.Client) -> None:
    assert shared_raw.get(STATUS).status_code == 401
    assert shared_raw.get(STATISTICS).status_code == 401
