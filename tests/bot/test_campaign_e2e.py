"""`/lead campaign [name]` end to end: the real Bolt app, the babelforce sandbox behind it, the Slack stand-in in front.
The figures come from the sandbox's own state (dials, statuses, agents), so the reply is checked against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.permissions import AccessPolicy
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, RENEWALS_CAMPAIGN_ID
from tests.support import Bot, error_text, start_bot, texts

CAMPAIGNS_ROUTE = "GET /api/v2/outbound/campaigns"
STATUS_ROUTE = "GET /api/v2/outbound/campaigns/{id}/status"
STATISTICS_ROUTE = "GET /api/v2/outbound/campaigns/{id}/statistics"
HOPPER_ROUTE = "GET /api/v2/outbound/campaigns/{id}/hopper"


def section(message: dict, block_id: str) -> str:
    return next(block["text"]["text"] for block in message["blocks"] if block.get("block_id") == block_id)


def test_no_name_lists_every_campaign_with_its_hopper(bot: Bot) -> None:
    bot.control.reset_stats()
    reply = bot.ask("campaign")
    assert section(reply, "campaign_verdict") == "*2 of 2 campaigns active*"
    lines = section(reply, "campaign_lines_1").splitlines()
    assert lines == [
        "*Renewals* · active · list Renewals · UP (last loaded first) · hopper 10 loaded",
        "*Spring outreach* · active · list Spring leads · UP RANK (highest rank first) · hopper 20 loaded",
    ]
    routes = bot.control.stats()["byRoute"]
    assert routes[CAMPAIGNS_ROUTE] == 1 and routes[HOPPER_ROUTE] == 2  # 1 + one hopper per active campaign
    assert bot.driver.stub.calls("views.open") == []  # no form: no name means all of them


def test_a_stopped_campaign_and_an_empty_hopper_show_in_the_overview(bot: Bot) -> None:
    bot.control.api("PUT", f"/api/v2/outbound/campaigns/{RENEWALS_CAMPAIGN_ID}", json={"active": False})
    for _ in range(3):
        bot.control.dial(DEMO_CAMPAIGN_ID, 20)
    reply = bot.ask("campaign")
    assert section(reply, "campaign_verdict") == "*1 of 2 campaigns active; hopper empty: Spring outreach*"
    lines = section(reply, "campaign_lines_1").splitlines()
    assert lines[0].endswith("*hopper empty*") and lines[0].startswith("*Spring outreach* · active")
    assert lines[1].startswith("*Renewals* · _not active_") and lines[1].endswith("not dialling")


def test_one_campaign_by_name_in_any_case_with_figures_that_follow_the_sandbox(bot: Bot) -> None:
    bot.control.agents(DEMO_CAMPAIGN_ID, "anna")
    bot.control.dial(DEMO_CAMPAIGN_ID, 3, "busy")
    bot.control.dial(DEMO_CAMPAIGN_ID, 2, "sale", agent="anna", talk_s=75)
    bot.control.reset_stats()
    reply = bot.ask("campaign spring OUTREACH")
    assert section(reply, "campaign_verdict") == "*Dialling: 20 leads in the hopper*"
    assert reply["blocks"][1]["text"]["text"] == "Campaign Spring outreach"
    status = section(reply, "campaign_status")
    assert "*Leads*: leads in the list 50 · dialable 45 · in the hopper 20" in status
    assert "by status busy 3, pending 45, sale 2" in status
    assert "*Calls*: calls so far 5 · outcomes busy 3, sale 2" in status
    assert "*Agents*: agents logged in 1" in status
    agents = section(reply, "campaign_agents")
    assert "anna · logged in" in agents and "talk 2 min 30 s" in agents
    fields = texts({"blocks": [reply["blocks"][2]]})
    assert "UP RANK (highest rank first)" in fields and "Spring leads" in fields
    routes = bot.control.stats()["byRoute"]
    assert [routes[r] for r in (CAMPAIGNS_ROUTE, STATUS_ROUTE, STATISTICS_ROUTE, HOPPER_ROUTE)] == [1, 1, 1, 1]


def test_by_id_and_a_stopped_one(bot: Bot) -> None:
    bot.control.api("PUT", f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}", json={"active": False})
    reply = bot.ask(f"campaign {DEMO_CAMPAIGN_ID.upper()}")
    assert section(reply, "campaign_verdict") == "*Not dialling: the campaign is not active*"
    assert "not dialling" in texts(reply)


def test_a_part_that_cannot_be_read_is_said_so_and_the_rest_is_shown(bot: Bot) -> None:
    bot.control.faults({"path": "/statistics$", "status": 503, "times": None})
    reply = bot.ask('campaign "Renewals"')
    assert "*Agent statistics*\nNot available: babelforce had a server error (HTTP 503)" in section(
        reply, "campaign_agents"
    )
    assert "*Leads*: leads in the list 10" in section(reply, "campaign_status")


@pytest.mark.parametrize(
    "typed, sentence",
    [
        ("Sprng outreach", "No campaign named 'Sprng outreach'; did you mean 'Spring outreach'?"),
        ('"Spring leads"', "'Spring leads' is a list; did you mean campaign 'Spring outreach', which dials it?"),
        ("Winter", "No campaign named 'Winter'; did you mean one of 'Renewals', 'Spring outreach'?"),
    ],
)
def test_an_unknown_name_is_one_sentence(bot: Bot, typed: str, sentence: str) -> None:
    bot.control.reset_stats()
    reply = bot.ask(f"campaign {typed}")
    assert error_text(reply) == f":x: {sentence}"
    assert bot.control.stats()["byRoute"].get(STATUS_ROUTE, 0) == 0


def test_babelforce_down_is_one_sentence(bot: Bot) -> None:
    bot.control.faults({"path": "/campaigns$", "status": 503, "times": None})
    reply = bot.ask("campaign")
    assert "babelforce had a server error (HTTP 503) when asked to list the campaigns" in error_text(reply)


def test_help_names_the_command_and_its_example(bot: Bot) -> None:
    shown = texts(bot.ask("help campaign"))
    assert "/lead campaign [name]" in shown and '/lead campaign "Spring outreach"' in shown


@pytest.fixture
def readers_only(sandbox: SandboxServer) -> Iterator[Bot]:
    yield from start_bot(sandbox, policy=AccessPolicy(readers=frozenset({"U0SOMEONEELSE"})))


def test_a_reader_tier_command_refused_to_others_without_asking_babelforce(readers_only: Bot) -> None:
    readers_only.control.reset_stats()
    reply = readers_only.ask("campaign")
    assert "LEADBOT_READERS" in error_text(reply)
    assert readers_only.control.stats()["total"] == 0
