"""`/lead campaign [name]`: parsing, and the replies as pure functions of what babelforce gave."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from babelforce.models import AgentStatistics, Campaign, CampaignStatus
from commands import registry
from commands.blocks import help_message
from commands.campaign import (
    BLOCK_CAMPAIGN_AGENTS,
    BLOCK_CAMPAIGN_STATUS,
    BLOCK_CAMPAIGN_VERDICT,
    CampaignDetail,
    CampaignRow,
    Part,
    ShowCampaign,
    campaign_message,
    duration,
    label_of,
    overview_line,
    overview_message,
)
from commands.grammar import Help, Invalid, OpenModal, command_text, parse

SPRING_ID = "ee369f62c0c04c8993e4b3921c506c45"
LIST_ID = "0123456789abcdef0123456789abcdef"


def campaign(name: str = "Spring outreach", **changes: object) -> Campaign:
    values: dict[str, object] = {
        "id": SPRING_ID,
        "name": name,
        "active": True,
        "testMode": False,
        "leadList": {"id": LIST_ID, "name": "Spring leads"},
        "listOrder": "UP RANK",
        "callRatio": 1.5,
    }
    values.update(changes)
    return Campaign.model_validate(values)


def texts(message: dict) -> str:
    parts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if value.get("type") in {"mrkdwn", "plain_text"} and isinstance(value.get("text"), str):
                parts.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message["blocks"])
    return "\n".join(parts)


def block_text(message: dict, block_id: str) -> str:
    return next(block["text"]["text"] for block in message["blocks"] if block.get("block_id") == block_id)


# ---------------------------------------------------------------------- parsing


def test_no_name_lists_every_campaign_without_a_form() -> None:
    assert parse("campaign") == ShowCampaign()
    assert not isinstance(parse("campaign"), OpenModal)
    assert registry.get("campaign").form is None
    assert registry.get("campaign").tier == registry.Tier.READ


@pytest.mark.parametrize(
    "text, name",
    [
        ('campaign "Spring outreach"', "Spring outreach"),
        ("campaign Spring outreach", "Spring outreach"),
        ("campaign   spring   OUTREACH ", "spring OUTREACH"),
        (f"campaign {SPRING_ID}", SPRING_ID),
        ('campaign "A=B"', "A=B"),
    ],
)
def test_the_words_make_one_name(text: str, name: str) -> None:
    assert parse(text) == ShowCampaign(name)


def test_key_value_pairs_are_refused_in_one_sentence() -> None:
    result = parse("campaign Spring active=true")
    assert isinstance(result, Invalid)
    assert "'active=true'" in result.message and result.field == "campaign"
    assert result.usage == "/lead campaign [name]"


def test_an_empty_quoted_name_is_refused() -> None:
    result = parse('campaign ""')
    assert isinstance(result, Invalid)
    assert "campaign must not be empty" in result.message


def test_help_and_the_command_text() -> None:
    assert parse("campaign help") == Help("campaign")
    assert parse('campaign "help"') == ShowCampaign("help")  # a quoted help is a name
    assert command_text(ShowCampaign("Spring outreach")) == '/lead campaign "Spring outreach"'
    assert command_text(ShowCampaign()) == "/lead campaign"
    shown = texts(help_message("campaign"))
    assert "/lead campaign [name]" in shown and '/lead campaign "Spring outreach"' in shown
    assert "without a name it lists them all, so it opens no form" in shown.lower()


def test_a_campaign_names_no_list() -> None:
    assert ShowCampaign("x").list_ref == ""
    assert registry.get("campaign").log_ref(ShowCampaign()) == "all"


# ---------------------------------------------------------------------- the overview


def test_one_line_per_campaign() -> None:
    active = overview_line(CampaignRow(campaign(), Part(20)))
    assert active == "*Spring outreach* · active · list Spring leads · UP RANK (highest rank first) · hopper 20 loaded"
    stopped = overview_line(CampaignRow(campaign("Renewals", active=False, listOrder="UP")))
    assert stopped == "*Renewals* · _not active_ · list Spring leads · UP (last loaded first) · not dialling"
    assert "*hopper empty*" in overview_line(CampaignRow(campaign(), Part(0)))
    assert "hopper unreadable (timeout)" in overview_line(CampaignRow(campaign(), Part(None, "timeout")))
    assert "no list" in overview_line(CampaignRow(campaign(leadList=None)))
    assert "active (test mode)" in overview_line(CampaignRow(campaign(testMode=True), Part(3)))
    assert "&lt;!channel&gt;" in overview_line(CampaignRow(campaign("<!channel>"), Part(1)))


def test_the_overview_says_how_many_are_active_and_which_hoppers_are_empty() -> None:
    rows = [CampaignRow(campaign(), Part(0)), CampaignRow(campaign("Renewals", active=False))]
    message = overview_message(rows)
    assert block_text(message, BLOCK_CAMPAIGN_VERDICT) == "*1 of 2 campaigns active; hopper empty: Spring outreach*"
    assert "Spring outreach (active); Renewals (not active)" in message["text"]
    assert overview_message([])["text"].startswith("babelforce has no campaigns")


def test_a_long_overview_stays_within_slacks_limits() -> None:
    rows = [CampaignRow(campaign(f"Campaign {n:04d} " + "x" * 80), Part(n)) for n in range(2000)]
    message = overview_message(rows)
    assert len(message["blocks"]) <= 50
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in message["blocks"])
    assert "… and " in texts(message)


# ---------------------------------------------------------------------- one campaign


def status(**changes: object) -> CampaignStatus:
    values: dict[str, object] = {
        "order": "UP RANK",
        "dial_method": "standard",
        "dial_level": 1,
        "statuses": ["callback", "new", "pending"],
        "time": "2026-11-26T16:58:13Z",
        "campaignLeadStats": {"total": 50, "dialable": 47, "inHopper": 20, "byStatus": {"no_answer": 3}},
        "campaignCallStats": {"calls": 3, "outcomes": {"no_answer": 3}},
        "campaignAgentStats": {"loggedIn": 1},
        "trunk": {"channelsFree": 12},
    }
    values.update(changes)
    return CampaignStatus.model_validate(values)


ANNA = AgentStatistics(agent="anna", login_at=datetime(2026, 11, 26, 9, tzinfo=UTC), talk_in_seconds=200)


def detail(**parts: object) -> CampaignDetail:
    values: dict[str, object] = {
        "campaign": campaign(),
        "hopper": Part(20),
        "status": Part(status()),
        "agents": Part((ANNA,)),
    }
    values.update(parts)
    return CampaignDetail(**values)  # type: ignore[arg-type]


def test_every_figure_babelforce_gives_is_labelled() -> None:
    message = campaign_message(detail())
    shown = block_text(message, BLOCK_CAMPAIGN_STATUS)
    assert "dial method standard · dial level 1 · order UP RANK · loads callback, new, pending" in shown
    assert "*Leads*: leads in the list 50 · dialable 47 · in the hopper 20 · by status no answer 3" in shown
    assert "*Calls*: calls so far 3 · outcomes no answer 3" in shown
    assert "*Agents*: agents logged in 1" in shown
    assert "*Trunk*: channels free 12" in shown  # a key leadbot never heard of, in words
    assert "<!date^" in shown  # as of: in the reader's time zone
    agents = block_text(message, BLOCK_CAMPAIGN_AGENTS)
    assert "anna · logged in <!date^" in agents and "talk 3 min 20 s" in agents
    assert block_text(message, BLOCK_CAMPAIGN_VERDICT) == "*Dialling: 20 leads in the hopper*"


@pytest.mark.parametrize(
    "parts, verdict",
    [
        ({"campaign": campaign(active=False)}, "Not dialling: the campaign is not active"),
        ({"campaign": campaign(leadList=None)}, "Not dialling: the campaign has no list"),
        ({"hopper": Part(0)}, "Active, but its hopper is empty"),
        (
            {"hopper": Part(0), "status": Part(status(campaignLeadStats={"dialable": 0}))},
            "Active, but nothing to dial: hopper empty and no dialable leads left",
        ),
        ({"hopper": Part(None, "x")}, "Active; its hopper could not be read"),
        ({"campaign": campaign(testMode=True)}, "Dialling in test mode (no real calls): 20 leads in the hopper"),
    ],
)
def test_the_verdict(parts: dict, verdict: str) -> None:
    assert block_text(campaign_message(detail(**parts)), BLOCK_CAMPAIGN_VERDICT) == f"*{verdict}*"


def test_a_part_babelforce_could_not_give_is_said_so() -> None:
    message = campaign_message(
        detail(status=Part(None, "babelforce did not answer in time."), agents=Part(None, "No access."))
    )
    assert "Not available: babelforce did not answer in time." in block_text(message, BLOCK_CAMPAIGN_STATUS)
    assert "*Agent statistics*\nNot available: No access." in block_text(message, BLOCK_CAMPAIGN_AGENTS)
    empty = campaign_message(detail(status=Part(CampaignStatus()), agents=Part(())))
    assert "babelforce gave no figures." in block_text(empty, BLOCK_CAMPAIGN_STATUS)
    assert "*Agent statistics*\nNone: no agent" in block_text(empty, BLOCK_CAMPAIGN_AGENTS)


def test_many_agents_are_cut() -> None:
    agents = tuple(AgentStatistics(agent=f"agent-{n}") for n in range(40))
    assert "… and 25 more" in block_text(campaign_message(detail(agents=Part(agents))), BLOCK_CAMPAIGN_AGENTS)


def test_labels_and_durations() -> None:
    assert label_of("inHopper") == "in the hopper"
    assert label_of("agents_ready") == "agents ready"
    assert label_of("dropRate30s") == "drop rate30s"
    assert [duration(s) for s in (0, 59, 60, 61, 3600, 3720)] == [
        "0 s",
        "59 s",
        "1 min",
        "1 min 1 s",
        "1 h",
        "1 h 2 min",
    ]
