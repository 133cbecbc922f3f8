"""The client's campaign status and statistics: typed, against the sandbox, and tolerant of what babelforce may send
instead (unknown keys, missing ones, strings where numbers belong)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from babelforce import AgentStatistics, CampaignStatus, NotFoundError, ServerError
from sandbox.seed import DEMO_CAMPAIGN_ID, RENEWALS_CAMPAIGN_ID

pytestmark = pytest.mark.anyio


async def test_status_of_the_demo_campaign(client):
    status = await client.get_campaign_status(DEMO_CAMPAIGN_ID)
    assert status.order == "UP RANK"
    assert status.dial_method == "standard"
    assert status.dial_level == 1
    assert set(status.statuses) == {"pending", "new", "callback"}
    assert status.time is not None and status.time.tzinfo is not None
    assert status.campaign_lead_stats["inHopper"] == 20
    assert status.dialable_leads == 50
    assert status.campaign_call_stats == {"calls": 0, "outcomes": {}}


async def test_status_follows_dials_in_both_id_spellings(client, control):
    control.dial(DEMO_CAMPAIGN_ID, 3, "sale")
    status = await client.get_campaign_status(str(uuid.UUID(DEMO_CAMPAIGN_ID)))
    assert status.dialable_leads == 47
    assert status.campaign_call_stats["outcomes"] == {"sale": 3}


async def test_statistics_per_agent(client, control):
    assert await client.get_campaign_statistics(DEMO_CAMPAIGN_ID) == []
    control.agents(DEMO_CAMPAIGN_ID, "anna")
    control.dial(DEMO_CAMPAIGN_ID, 2, agent="anna", talk_s=40)
    [anna] = await client.get_campaign_statistics(DEMO_CAMPAIGN_ID)
    assert anna.agent == "anna"
    assert anna.talk_in_seconds == 80
    assert anna.pause_in_seconds == 0
    assert anna.wait_in_seconds is not None and anna.wait_in_seconds >= 0
    assert isinstance(anna.login_at, datetime)
    now = datetime.now(UTC)
    assert len(await client.get_campaign_statistics(DEMO_CAMPAIGN_ID, since=now - timedelta(hours=1))) == 1
    assert await client.get_campaign_statistics(DEMO_CAMPAIGN_ID, until=now - timedelta(hours=1)) == []


async def test_an_unknown_campaign_is_not_found(client):
    for call in (client.get_campaign_status, client.get_campaign_statistics):
        with pytest.raises(NotFoundError) as missing:
            await call(uuid.uuid4().hex)
        assert missing.value.resource == "campaign"
    with pytest.raises(NotFoundError):
        await client.get_campaign_status("not-an-id")


async def test_requests_are_counted_once_each(client, control):
    control.reset_stats()
    await client.get_campaign_status(RENEWALS_CAMPAIGN_ID)
    await client.get_campaign_statistics(RENEWALS_CAMPAIGN_ID)
    routes = control.stats()["byRoute"]
    assert routes["GET /api/v2/outbound/campaigns/{id}/status"] == 1
    assert routes["GET /api/v2/outbound/campaigns/{id}/statistics"] == 1


async def test_a_server_error_on_status_is_retried_then_named(client, control):
    control.faults({"path": "/status$", "status": 503, "times": None})
    with pytest.raises(ServerError) as failure:
        await client.get_campaign_status(DEMO_CAMPAIGN_ID)
    assert failure.value.operation == "get_campaign_status"
    assert failure.value.campaign_id == DEMO_CAMPAIGN_ID
    assert control.count("GET /api/v2/outbound/campaigns/{id}/status") == 3  # two retries


def test_status_model_tolerates_what_babelforce_may_send_instead():
    status = CampaignStatus.model_validate(
        {
            "dial_level": "fast",
            "dialMethod": "manual",
            "statuses": "pending",
            "time": "2020-04-16 22:21:38+00:00",
            "campaignLeadStats": [],
            "campaignCallStats": None,
            "campaignAgentStats": {"agentsReady": 3},
            "trunk": {"lines": 30},
            "somethingNew": {"x": 1},
        }
    )
    assert status.dial_level is None
    assert status.dial_method == "manual"
    assert status.statuses == []
    assert status.time == datetime(2020, 4, 16, 22, 21, 38, tzinfo=UTC)
    assert status.campaign_lead_stats == {} and status.campaign_call_stats == {}
    assert status.campaign_agent_stats == {"agentsReady": 3}
    assert status.dialable_leads is None
    assert CampaignStatus.model_validate({}).order is None
    assert CampaignStatus.model_validate({"campaignLeadStats": {"dialable": True}}).dialable_leads is None


def test_agent_statistics_read_strings_and_numbers():
    agent = AgentStatistics.model_validate(
        {"agent": 7, "login_at": "0000-00-00 00:00:00", "talk_in_seconds": "12.0", "wait_in_seconds": 5, "x": 1}
    )
    assert agent.agent == "7"
    assert agent.login_at is None
    assert agent.talk_in_seconds == 12
    assert agent.wait_in_seconds == 5
    assert agent.pause_in_seconds is None
    assert AgentStatistics.model_validate({"talk_in_seconds": "soon"}).talk_in_seconds is None
