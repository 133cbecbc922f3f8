"""The Home tab end to end: `app_home_opened` from the Slack stand-in, the real Bolt app, the sandbox behind it.

It shows the campaigns at a glance (active, hopper fill, last alert) and the viewer's own last 10 changes, with an
Undo button on each one they could still undo; an Undo clicked there takes the Undo button's one path and the tab
is published again with the outcome on top.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.permissions import AccessPolicy
from commands.blocks import ACTION_UNDO
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID
from tests.support import ALERT_CHANNEL, Bot, start_bot, texts, unescape

USER = "U0SUPERVISOR"  # the driver's user


def open_home(bot: Bot, user: str = USER) -> dict[str, Any]:
    """Open the tab as `user` and return the view leadbot published for them."""
    seen = len(bot.stub.events)
    previous, bot.driver.user_id = bot.driver.user_id, user
    try:
        opened = bot.driver.open_home()
    finally:
        bot.driver.user_id = previous
    assert opened.status == 200 and opened.acked_in_time
    return bot.stub.wait_home_view(user, after=seen)


def lines(view: dict[str, Any], prefix: str) -> list[str]:
    return [
        unescape(block["text"]["text"])
        for block in view["blocks"]
        if block.get("block_id", "").startswith(prefix) and block.get("type") == "section"
    ]


def changes(view: dict[str, Any]) -> list[str]:
    return lines(view, "home_change_")


def undo_values(view: dict[str, Any]) -> list[str]:
    """The change numbers of the Undo buttons, top to bottom."""
    return [
        block["accessory"]["value"]
        for block in view["blocks"]
        if block.get("block_id", "").startswith("home_change_")
        and (block.get("accessory") or {}).get("action_id") == ACTION_UNDO
    ]


def change_id_of(line: str) -> str:
    return line.split("`")[1].lstrip("#")


def test_a_first_visit_shows_the_campaigns_and_no_changes(bot: Bot) -> None:
    view = open_home(bot)
    assert view["type"] == "home"
    assert lines(view, "home_campaigns_") == [
        "*Renewals* · active · hopper 10 loaded\n*Spring outreach* · active · hopper 20 loaded"
    ]
    assert changes(view) == ["You have made no change through leadbot yet."]
    assert "Campaign alerts are off (LEADBOT_ALERT_CHANNEL is not set)." in texts(view)


def test_my_changes_newest_first_with_undo_where_it_would_work(bot: Bot) -> None:
    bot.ask('rank "Spring leads" lead-10 100')
    bot.ask('set "Spring leads" lead-11 city=Bonn')
    bot.ask('rank "Spring leads" lead-12 99')
    bot.ask('rank "Spring leads" lead-12 98')  # lead-12 changed again: the first change of it can no longer be undone
    bot.ask('add "Spring leads" home-1 +4915199990077 3')
    bot.driver.user_id = "U0COLLEAGUE"
    bot.ask('rank "Spring leads" lead-13 97')  # someone else's: not on my tab
    bot.driver.user_id = USER

    view = open_home(bot)
    shown = changes(view)
    assert len(shown) == 5
    assert "*added* home-1 in Spring leads: uid home-1, number +4915199990077, rank 3" in shown[0]
    assert "*changed* lead-12 in Spring leads: rank 99 → 98" in shown[1]
    assert "*changed* lead-12 in Spring leads: rank 12 → 99" in shown[2]
    assert "*changed* lead-11 in Spring leads: city Cologne → Bonn" in shown[3]
    assert "*changed* lead-10 in Spring leads: rank 10 → 100" in shown[4]
    assert "lead-13" not in texts(view)
    ids = [change_id_of(line) for line in shown]
    assert undo_values(view) == [ids[0], ids[1], ids[3], ids[4]]  # not the older change of lead-12
    add_button = next(block["accessory"] for block in view["blocks"] if block.get("block_id") == "home_change_1")
    assert add_button["confirm"]["title"]["text"] == "Delete this lead?"  # undoing an add deletes the lead


def test_undo_on_the_home_tab_restores_and_republishes(bot: Bot) -> None:
    bot.ask('rank "Spring leads" lead-14 100')
    view = open_home(bot)
    [change_id] = undo_values(view)
    seen = len(bot.stub.events)
    click = bot.driver.click(view, ACTION_UNDO)
    assert click.status == 200 and click.acked_in_time
    after = bot.stub.wait_home_view(USER, after=seen)
    assert bot.lead("lead-14").rank == 14
    notice = next(block for block in after["blocks"] if block.get("block_id") == "home_notice")["text"]["text"]
    assert notice.startswith(f"Undo of #{change_id}: Undone")
    shown = changes(after)
    assert shown[0].startswith("`#") and "*undid a change:* lead-14" in shown[0]
    assert "_(undone)_" in shown[1]
    assert undo_values(after) == []  # the undo itself and the undone change: neither can be undone
    # the Undo button's one path: the change is undone once, however it is asked again
    assert "Already undone" in texts(bot.ask(f"undo #{change_id}"))
    assert bot.lead("lead-14").rank == 14


def test_the_messages_tab_publishes_nothing(bot: Bot) -> None:
    assert bot.driver.open_home(tab="messages").status == 200
    time.sleep(0.3)
    assert bot.stub.calls("views.publish") == []


@pytest.fixture
def gated(sandbox: SandboxServer) -> Iterator[Callable[..., Bot]]:
    running: list[Iterator[Bot]] = []

    def make(policy: AccessPolicy, **options: Any) -> Bot:
        generator = start_bot(sandbox, policy=policy, **options)
        running.append(generator)
        return next(generator)

    yield make
    for generator in running:
        generator.close()


def test_someone_who_may_not_read_sees_why_and_nothing_else(gated: Callable[..., Bot], tmp_path: Path) -> None:
    db = tmp_path / "leadbot.db"
    bot = gated(AccessPolicy(readers=frozenset({"U0SOMEONEELSE"})), audit_path=db)
    bot.control.reset_stats()
    view = open_home(bot)
    assert [block["type"] for block in view["blocks"]] == ["header", "section"]
    assert "LEADBOT_READERS" in texts(view)
    assert bot.control.stats()["total"] == 0  # refused before any babelforce call
    with closing(sqlite3.connect(db)) as conn:  # the refusal is recorded, as an operator would see it
        assert conn.execute("SELECT action, outcome FROM changes").fetchall() == [("home", "denied")]


def test_a_reader_who_may_not_write_gets_no_undo_button(gated: Callable[..., Bot], tmp_path: Path) -> None:
    shared = tmp_path / "leadbot.db"  # one audit trail, as two processes sharing LEADBOT_DB
    writer = gated(AccessPolicy(writers=frozenset({USER})), audit_path=shared)
    writer.ask('rank "Spring leads" lead-15 100')
    assert len(undo_values(open_home(writer))) == 1
    reader = gated(AccessPolicy(writers=frozenset({"U0SOMEONEELSE"}), readers=frozenset({USER})), audit_path=shared)
    view = open_home(reader)
    assert "lead-15" in texts(view) and undo_values(view) == []


def test_leadbot_channels_do_not_hide_the_home_tab_which_is_in_no_channel(gated: Callable[..., Bot]) -> None:
    bot = gated(AccessPolicy(allow_all_writers=True, channels=frozenset({"C0CAMPAIGN"})))
    bot.ask('rank "Spring leads" lead-16 100')
    view = open_home(bot)
    assert lines(view, "home_campaigns_") and len(undo_values(view)) == 1
    seen = len(bot.stub.events)
    bot.driver.click(view, ACTION_UNDO)
    bot.stub.wait_home_view(USER, after=seen)
    assert bot.lead("lead-16").rank == 16


@pytest.fixture
def alerting(sandbox: SandboxServer) -> Iterator[Bot]:
    yield from start_bot(sandbox, alerts={"interval": 0.1})


def test_the_last_alert_of_each_campaign(alerting: Bot) -> None:
    bot = alerting
    for _ in range(3):
        bot.control.dial(DEMO_CAMPAIGN_ID, 20)
    deadline = time.monotonic() + 10
    while not [c for c in bot.stub.calls("chat.postMessage") if c.payload["channel"] == ALERT_CHANNEL]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [text] = lines(open_home(bot), "home_campaigns_")
    renewals, spring = text.splitlines()
    assert renewals == "*Renewals* · active · hopper 10 loaded · no alert"
    # hopper empty, or no dialable lead left: whichever the watcher saw first while the dials went on
    assert spring.startswith("*Spring outreach* · active · *hopper empty* · last alert: Spring outreach: ")
    assert 'look closer: /lead hopper "Spring outreach"' in spring
    assert "<!date^" in spring  # when, in the viewer's time zone
