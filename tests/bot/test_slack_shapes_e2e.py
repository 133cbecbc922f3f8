"""The bot against a Slack stand-in that behaves like Slack where the trial found the stand-in kind:

1. a slash command's ack is never replaced by a post to its response_url, so the ack stays on screen for good:
   it must read true after the answer ("Received: …"), and an "apply anyway?" question is still replaced in place;
2. chat.postEphemeral works only where the bot is a member: a form answered late in a channel the bot is not in
   is answered in the user's DM with the app, saying where the result went and why;
3. Enterprise Grid, org-wide and Slack Connect payloads (tests/fixtures/slack_payloads/*.json, replayed by the
   driver): LEADBOT_TEAM_ID is checked against the acting user's own workspace in every request kind (commands,
   buttons, forms, options), never against the workspace the app is installed in.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.permissions import AccessPolicy
from bot.slack_edge import actor_workspace
from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_UNDO, BLOCK_PROGRESS
from commands.modals import ACTION_LIST, BLOCK_LEAD, BLOCK_LIST, BLOCK_RANK
from sandbox.seed import DEMO_LIST_ID
from slackstub.server import RESPONSE_URL_USES
from tests.support import UPDATE_ROUTE, Bot, header, is_progress, is_question, shared_bot, texts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack_payloads"
SHAPES = {path.stem: json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))}
KINDS = ("slash_command", "block_actions", "view_submission", "block_suggestion")
CHANNEL, USER = "C0CAMPAIGN", "U0SUPERVISOR"  # the driver's own channel (the bot is a member) and user
#: LEADBOT_TEAM_ID naming each shape's own workspace or organisation (what an operator lists to serve them).
THEIR_IDS = {
    "enterprise_grid": {"T0ACMESALES"},  # the workspace alone: Grid reports the org as user.team_id
    "org_wide": {"E0ACMEORG"},
    "slack_connect": {"T0PARTNER"},
    "slack_connect_from_grid": {"E0PARTNERORG"},
}


def shown(bot: Bot, channel: str = CHANNEL, user: str = USER) -> list[tuple[str, str]]:
    """What the user sees in the channel, oldest first: (how it got there, its text)."""
    return [(m.via, texts(m.message) or m.message.get("text", "")) for m in bot.stub.screen(channel, user)]


# ====================================================================== 1. the ack stays


def test_the_fixtures_are_the_four_shapes() -> None:
    assert set(SHAPES) == set(THEIR_IDS)
    for name, shape in SHAPES.items():
        assert set(KINDS) <= set(shape), name


def test_a_commands_receipt_stays_above_its_answer_and_reads_true_for_good(bot: Bot) -> None:
    interaction = bot.command('rank "Spring leads" lead-10 60')

    assert interaction.acked_in_time and interaction.json is not None and is_progress(interaction.json)
    answer = bot.driver.replies(interaction)[0]
    assert "replace_original" not in answer  # Slack would not replace the ack anyway
    screen = shown(bot)
    assert [via for via, _ in screen] == ["ack", "response_url"]  # both stay, the receipt first
    receipt = screen[0][1]
    assert receipt == "Received: change the rank of lead-10 in Spring leads to 60"
    assert "…" not in receipt and "hourglass" not in json.dumps(interaction.json)  # no claim of work in progress
    assert header(answer) in screen[1][1]
    assert bot.lead("lead-10").rank == 60


def test_every_subcommands_receipt_says_what_was_asked(bot: Bot) -> None:
    asked = {
        'show "Spring leads" lead-40': "Received: show lead-40 in Spring leads",
        'history "Spring leads" lead-40': "Received: the history of lead-40 in Spring leads",
        'set "Spring leads" lead-12 city=Kiel': "Received: change lead-12 in Spring leads",
        'add "Spring leads" shape-1 +4915199990123 3': "Received: add lead shape-1 to Spring leads",
    }
    for text, receipt in asked.items():
        interaction = bot.command(text)
        assert interaction.json is not None
        assert [b["block_id"] for b in interaction.json["blocks"]] == [BLOCK_PROGRESS]
        assert texts(interaction.json) == receipt, text
        bot.driver.replies(interaction)


def test_apply_anyway_replaces_the_question_in_place_and_the_receipt_stays(bot: Bot) -> None:
    interaction = bot.command('rank "Spring leads" lead-40 45')
    question = bot.driver.replies(interaction)[0]
    assert is_question(question)
    assert [via for via, _ in shown(bot)] == ["ack", "response_url"]

    click = bot.driver.click(question, ACTION_APPLY_ANYWAY)
    card = bot.driver.replies(click)[0]

    assert card["replace_original"] is True  # a click's response_url does replace the message clicked
    screen = shown(bot)
    assert [via for via, _ in screen] == ["ack", "response_url"]
    assert screen[0][1] == "Received: change the rank of lead-40 in Spring leads to 45"
    assert "Rank of lead-40: 40 → 45" in screen[1][1] and "Apply anyway" not in screen[1][1]


def test_help_and_refusals_are_the_ack_itself_one_message(bot: Bot) -> None:
    help_ack = bot.command("help")
    bad = bot.command('rank "Spring leads" lead-10 99999')

    assert help_ack.json is not None and not is_progress(help_ack.json)
    assert bad.json is not None and not is_progress(bad.json)
    assert [via for via, _ in shown(bot)] == ["ack", "ack"]
    assert bot.stub.responses(help_ack.response_url or "") == []


# ====================================================================== 2. where the bot is not a member


def use_up(response_url: str) -> None:
    for n in range(RESPONSE_URL_USES):
        assert httpx.post(response_url, json={"text": f"filler {n}"}).status_code == 200


@pytest.mark.parametrize(
    ("channel", "known", "refusal"),
    [("C0QUIET", True, "not_in_channel"), ("G0PRIVATE", False, "channel_not_found")],
)
def test_a_late_form_in_a_channel_without_the_bot_is_answered_in_the_users_dm_saying_why(
    bot: Bot, channel: str, known: bool, refusal: str
) -> None:
    """The form's response_url is used up (or expired): Slack refuses an ephemeral message where the bot is not a
    member, so the answer goes to the user's DM with the app, opened by a line naming the channel."""
    if known:
        bot.stub.add_channel(channel, "quiet-room", member=False)
    bot.driver.channel_id = channel
    opened = bot.command("rank")
    view = bot.driver.opened_view(opened)
    assert opened.response_url
    use_up(opened.response_url)

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-10", BLOCK_RANK: "100"})

    assert submitted.body == ""
    posted = bot.stub.wait_for(lambda e: e.kind == "api" and e.name == "chat.postMessage", timeout=10)
    assert posted.ok, posted.response
    (ephemeral,) = bot.stub.calls("chat.postEphemeral")
    assert (ephemeral.response or {}).get("error") == refusal
    dm = bot.stub.dm_channel(USER)
    assert posted.payload["channel"] == dm
    ((via, text),) = shown(bot, dm)
    assert via == "chat.postMessage"
    if channel.startswith(("C", "G")):
        assert text.startswith(f"leadbot could not answer you in <#{channel}>: it is not a member of that channel")
    assert "first of the next batch" in text  # the whole answer follows the note
    assert bot.lead("lead-10").rank == 100
    assert bot.control.count(UPDATE_ROUTE) == 1
    assert shown(bot, channel) == [("response_url", f"filler {n}") for n in range(RESPONSE_URL_USES)]


def test_when_slack_refuses_the_dm_too_nothing_crashes_and_the_change_is_made_once(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot.stub.remove_bot_from(CHANNEL)
    bot.stub.fail("conversations.open", status=200, error="user_not_visible")
    opened = bot.command("rank")
    view = bot.driver.opened_view(opened)
    assert opened.response_url
    use_up(opened.response_url)

    bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-11", BLOCK_RANK: "101"})

    bot.stub.wait_for(lambda e: e.kind == "api" and e.name == "conversations.open", timeout=10)
    deadline = time.monotonic() + 5
    while "the DM fallback failed too (user_not_visible)" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "the DM fallback failed too (user_not_visible): the user got no answer" in caplog.text
    assert not bot.stub.calls("chat.postMessage")
    assert bot.lead("lead-11").rank == 101
    assert bot.control.count(UPDATE_ROUTE) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# ====================================================================== 3. whose workspace: the acting user's own


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(THEIR_IDS))
def test_the_actor_is_the_users_own_workspace_and_organisation(name: str, kind: str) -> None:
    """A unit test of one function on Slack's shapes: never the installing workspace (view.app_installed_team_id,
    or the host's team.id in a Slack Connect channel)."""
    expected = tuple(SHAPES[name]["actor"][kind])
    assert actor_workspace(SHAPES[name][kind]) == expected


@pytest.fixture(scope="module")
def shapes_bot() -> Iterator[Bot]:
    """One bot for the matrix below; each test sets its own LEADBOT_TEAM_ID (the gate's policy) and leads."""
    yield from shared_bot()


def serve(bot: Bot, teams: set[str]) -> None:
    bot.leadbot.gate.policy = AccessPolicy(teams=frozenset(teams), allow_all_writers=True)


@pytest.fixture
def shapes(shapes_bot: Bot) -> Iterator[Bot]:
    yield shapes_bot
    shapes_bot.driver.origin = None
    serve(shapes_bot, set())


def every_request_kind(bot: Bot, shape: dict[str, Any], teams: set[str], lead: int) -> dict[str, Any]:
    """From `shape`'s user, with LEADBOT_TEAM_ID = `teams`: a command, an options request, a form submission and a
    click on Undo (the form and the change to undo are prepared first, with every workspace served)."""
    serve(bot, set())
    card = bot.ask(f'rank "Spring leads" lead-{lead} {lead + 100}')  # by our own user: a change with an Undo
    bot.driver.origin = shape
    opened = bot.command("show")
    view = bot.driver.opened_view(opened)
    serve(bot, teams)
    command = bot.command(f'show "Spring leads" lead-{lead}')
    options = bot.driver.suggest(view, ACTION_LIST)
    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: f"lead-{lead}"}, interaction=opened)
    click = bot.driver.click(card, ACTION_UNDO)
    return {"command": command, "options": options, "submitted": submitted, "opened": opened, "click": click}


@pytest.mark.parametrize(("name", "lead"), [(name, 2 + n) for n, name in enumerate(sorted(THEIR_IDS))])
def test_served_where_leadbot_team_id_names_the_users_own_workspace_or_organisation(
    shapes: Bot, name: str, lead: int
) -> None:
    seen = every_request_kind(shapes, SHAPES[name], THEIR_IDS[name], lead)

    assert seen["command"].json is not None and is_progress(seen["command"].json)
    assert f"Lead lead-{lead}" in header(shapes.driver.replies(seen["command"])[0])
    assert "Spring leads" in [option["text"]["text"].split(" (")[0] for option in seen["options"]]
    assert seen["submitted"].body == ""
    assert any(f"Lead lead-{lead}" in header(reply) for reply in shapes.driver.replies(seen["opened"]))
    undone = shapes.driver.replies(seen["click"])[0]
    assert "Undone" in texts(undone) or f"Rank of lead-{lead}" in texts(undone), texts(undone)
    assert shapes.lead(f"lead-{lead}").rank == lead  # the Undo went through


@pytest.mark.parametrize(("name", "lead"), [(name, 6 + n) for n, name in enumerate(sorted(THEIR_IDS))])
def test_refused_in_every_request_kind_where_only_the_installing_workspace_is_served(
    shapes: Bot, name: str, lead: int
) -> None:
    """LEADBOT_TEAM_ID=T0LEADBOT, the workspace the app is installed in: the form's app_installed_team_id and the
    host's team.id in a shared channel say T0LEADBOT, but the person acting is not of it."""
    seen = every_request_kind(shapes, SHAPES[name], {"T0LEADBOT"}, lead)

    refused = "leadbot does not serve this Slack workspace"
    assert seen["command"].json is not None and refused in texts(seen["command"].json)
    assert seen["options"] == []
    body = seen["submitted"].json or {}
    assert body.get("response_action") == "errors" and refused in json.dumps(body["errors"])
    assert refused in texts(shapes.driver.replies(seen["click"])[0])
    assert shapes.lead(f"lead-{lead}").rank == lead + 100  # the Undo did not go through


def test_the_organisation_of_an_org_wide_install_serves_its_workspaces_by_their_own_id_too(shapes: Bot) -> None:
    """An org-wide install's form comes with team null: the workspace is the view's, so listing the workspace id
    (not only the organisation's) serves every request kind as well."""
    seen = every_request_kind(shapes, SHAPES["org_wide"], {"T0ACMESUPPORT"}, 14)

    assert seen["command"].json is not None and is_progress(seen["command"].json)
    assert seen["options"]
    assert seen["submitted"].body == ""
    assert "does not serve" not in texts(shapes.driver.replies(seen["click"])[0])
    assert shapes.lead("lead-14").rank == 14  # undone
