"""`/lead rank … top` and signed ranks, end to end: signed Slack requests through the real Bolt app, the babelforce
sandbox behind it, and the sandbox's own dialer to check that the lead `top` moved heads the next batch.

The demo: "Spring leads" (lead-n has rank n) is dialled by "Spring outreach" in list order UP RANK; its hopper holds
lead-50 … lead-31, so the waiting leads are lead-1 … lead-30 and the highest of them is lead-30 (rank 30).
"Renewals" is dialled in list order UP; "Autumn leads" by no campaign.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_UNDO
from commands.modals import BLOCK_LEAD, BLOCK_LIST, BLOCK_RANK
from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID, RENEWALS_LIST_ID
from tests.support import Bot, caveat, error_text, header, hopper_uids, is_question, start_bot, texts, unescape, writes

EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"  # the CSV export (the bot never pages the JSON list)
LEAD_ROUTE = "GET /api/v2/outbound/lists/{id}/leads/{leadId}"
WAITING_TOP = "Top: rank 31, one above the highest waiting lead (lead-30, rank 30)"


@pytest.fixture
def audited(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Bot]:
    """The bot with its audit trail in a file the test reads as an operator would."""
    yield from start_bot(sandbox, audit_path=tmp_path / "audit.db")


def records(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute("SELECT * FROM changes ORDER BY id")]
    for row in rows:
        for name in ("before_json", "after_json"):
            row[name] = json.loads(row[name]) if row[name] else None
    return rows


def plain(text: str) -> str:
    """mrkdwn as the user reads it: escapes undone, bold and code marks dropped."""
    return unescape(text).replace("*", "").replace("`", "")


def set_rank(bot: Bot, uid: str, rank: int) -> None:
    """Change a lead's rank behind leadbot's back (as another tool would)."""
    with bot.sandbox.state.lock:
        bot.lead(uid).rank = rank


def set_list_order(bot: Bot, order: str) -> None:
    response = bot.control.api("PUT", f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}", json={"listOrder": order})
    assert response.status_code < 300, response.text


# ---------------------------------------------------------------------- top under UP RANK and DOWN RANK


def test_top_under_up_rank_is_one_above_the_highest_waiting_lead_and_heads_the_next_batch(
    audited: Bot, tmp_path: Path
) -> None:
    bot = audited
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-5 top')

    assert header(reply) == "Rank of lead-5: 5 → 31", texts(reply)
    assert WAITING_TOP in plain(caveat(reply))
    assert bot.lead("lead-5").rank == 31
    routes = bot.control.stats()["byRoute"]
    assert writes(bot) == 1
    assert routes.get(EXPORT_ROUTE) == 1  # one export gave the index and the ranks: no GET per lead
    assert routes.get(LEAD_ROUTE, 0) <= 3
    (record,) = records(tmp_path / "audit.db")
    assert record["action"] == "rank" and record["outcome"] == "ok"
    assert record["command"] == '/lead rank "Spring leads" lead-5 top'  # as typed; the numbers are below
    assert (record["before_json"]["rank"], record["after_json"]["rank"]) == (5, 31)
    assert "Top: rank 31" in record["caveat"]

    bot.control.dial(DEMO_CAMPAIGN_ID, 20)  # the current batch is dialled; the dialer loads the next one

    assert hopper_uids(bot, DEMO_CAMPAIGN_ID)[0] == "lead-5"


def test_top_with_the_list_already_indexed_reads_it_once_more_and_only_once(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-5')  # the lookup index is built: the lead is found without an export
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-5 top')

    assert header(reply) == "Rank of lead-5: 5 → 31"
    assert bot.control.stats()["byRoute"].get(EXPORT_ROUTE) == 1  # fresh ranks and statuses: one export
    assert bot.control.stats()["byRoute"].get(LEAD_ROUTE, 0) <= 3


def test_top_under_up_order_reads_no_export_once_the_list_is_indexed(bot: Bot) -> None:
    bot.ask("show Renewals renewal-2")
    bot.control.reset_stats()

    reply = bot.ask("rank Renewals renewal-2 top")

    assert "rank does not matter" in error_text(reply)
    assert bot.control.stats()["byRoute"].get(EXPORT_ROUTE, 0) == 0


def test_top_under_down_rank_is_one_below_the_lowest_waiting_lead_and_heads_the_next_batch(bot: Bot) -> None:
    set_list_order(bot, "DOWN RANK")  # the hopper keeps lead-50 … lead-31; lead-1 is now the first waiting lead
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-20 TOP')

    assert header(reply) == "Rank of lead-20: 20 → 0"
    assert "Top: rank 0, one below the lowest waiting lead (lead-1, rank 1)" in plain(caveat(reply))
    assert writes(bot) == 1

    bot.control.dial(DEMO_CAMPAIGN_ID, 20)

    assert hopper_uids(bot, DEMO_CAMPAIGN_ID)[:2] == ["lead-20", "lead-1"]


def test_top_of_a_lead_that_already_beats_every_waiting_lead_changes_nothing_and_says_why(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-40 top')

    text = plain(caveat(reply))
    assert (
        "Rank 40 is already the top: it beats the highest waiting lead (lead-30, rank 30), so the rank stays." in text
    )
    assert "In the hopper at position 11 of 20" in text
    assert writes(bot) == 0


# ---------------------------------------------------------------------- refusals: nothing is written


def test_top_under_list_order_up_is_refused_saying_rank_does_not_matter(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask("rank Renewals renewal-2 top")

    assert plain(error_text(reply)).endswith(
        "rank does not matter: campaign Renewals dials in list order UP (last loaded first), so no rank puts a lead "
        "first; nothing was changed."
    )
    assert writes(bot) == 0
    assert bot.lead("renewal-2", RENEWALS_LIST_ID).rank == 2


def test_top_on_a_list_no_campaign_dials_is_refused(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('rank "Autumn leads" autumn-2 top')

    assert "top needs a campaign dialling by rank, but no campaign dials list Autumn leads" in error_text(reply)
    assert writes(bot) == 0
    assert bot.lead("autumn-2", AUTUMN_LIST_ID).rank == 2


def test_top_at_the_smallint_limit_is_refused_and_says_so(bot: Bot) -> None:
    set_rank(bot, "lead-7", 32767)  # a waiting lead already at the highest rank babelforce stores
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-5 top')

    assert plain(error_text(reply)).endswith(
        "No rank is above lead-7's rank 32767: 32767 is the highest rank babelforce stores, so top cannot put this "
        "lead ahead of it; nothing was changed. Move lead-7 down first, or give a number."
    )
    assert writes(bot) == 0
    assert bot.lead("lead-5").rank == 5


# ---------------------------------------------------------------------- asked first, Apply anyway, history, Undo


def test_top_of_a_lead_in_the_hopper_asks_first_shows_the_number_and_undo_puts_it_back(
    audited: Bot, tmp_path: Path
) -> None:
    bot = audited
    set_rank(bot, "lead-35", 10)  # loaded into the hopper at rank 35, then lowered elsewhere
    bot.control.reset_stats()

    interaction = bot.command('rank "Spring leads" lead-35 top')
    question = bot.driver.replies(interaction, count=1)[0]

    assert is_question(question)
    shown = plain(texts(question))
    assert "Change the rank of lead-35 from 10 to 31" in shown
    assert WAITING_TOP in shown and "Already in the hopper" in shown
    assert writes(bot) == 0

    click = bot.driver.click(question, ACTION_APPLY_ANYWAY)
    card = bot.driver.replies(click, count=1)[0]

    assert header(card) == "Rank of lead-35: 10 → 31"
    assert WAITING_TOP in plain(caveat(card))
    assert bot.lead("lead-35").rank == 31
    assert writes(bot) == 1
    (record,) = records(tmp_path / "audit.db")
    assert record["command"] == '/lead rank "Spring leads" lead-35 top (Apply anyway)'
    assert (record["before_json"]["rank"], record["after_json"]["rank"]) == (10, 31)

    history = texts(bot.ask('history "Spring leads" lead-35'))
    assert "rank 10 → 31" in plain(history)

    undo = bot.driver.click(card, ACTION_UNDO)
    bot.driver.replies(undo, count=1)
    assert bot.lead("lead-35").rank == 10
    assert writes(bot) == 2


def test_apply_anyway_refuses_when_the_top_rank_moved_since_the_question(bot: Bot) -> None:
    set_rank(bot, "lead-35", 10)
    interaction = bot.command('rank "Spring leads" lead-35 top')
    question = bot.driver.replies(interaction, count=1)[0]
    assert is_question(question) and "from 10 to 31" in texts(question)
    set_rank(bot, "lead-30", 40)  # a waiting lead now ranks higher: 31 would no longer head the next batch
    bot.control.reset_stats()

    click = bot.driver.click(question, ACTION_APPLY_ANYWAY)
    answer = bot.driver.replies(click, count=1)[0]

    assert "the top rank for lead-35 is now 41, not 31; nothing was changed" in error_text(answer)
    assert writes(bot) == 0
    assert bot.lead("lead-35").rank == 10


# ---------------------------------------------------------------------- a signed rank: refused, no write


def test_plus_ten_is_refused_naming_the_current_rank_and_the_absolute_value(audited: Bot, tmp_path: Path) -> None:
    bot = audited
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-5 +10')

    assert error_text(reply).endswith(
        "rank is absolute: lead-5 has rank 5; write 15 to raise it by 10, or 10 to set rank 10."
    )
    assert writes(bot) == 0
    assert bot.lead("lead-5").rank == 5
    assert records(tmp_path / "audit.db") == []  # refused before any record: nothing was attempted


def test_set_rank_plus_ten_is_refused_the_same_way(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('set "Spring leads" lead-5 rank=+10 city=Bonn')

    assert error_text(reply).endswith(
        "rank is absolute: lead-5 has rank 5; write rank=15 to raise it by 10, or rank=10 to set rank 10."
    )
    assert writes(bot) == 0
    assert bot.lead("lead-5").data["city"] != "Bonn"


def test_the_set_form_refuses_plus_ten_next_to_the_rank_field(bot: Bot) -> None:
    interaction = bot.command("set")
    view = bot.driver.opened_view(interaction)
    bot.control.reset_stats()

    refused = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-5", BLOCK_RANK: "+10"})

    assert refused.json is not None and refused.json["response_action"] == "errors", refused.body
    assert refused.json["errors"] == {
        BLOCK_RANK: "rank is absolute: lead-5 has rank 5; write 15 to raise it by 10, or 10 to set rank 10."
    }
    assert writes(bot) == 0


def test_minus_five_stays_an_absolute_rank(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-5 -5')

    assert header(reply) == "Rank of lead-5: 5 → -5"
    assert bot.lead("lead-5").rank == -5


def test_the_rank_form_refuses_plus_ten_next_to_the_rank_field_and_takes_top(bot: Bot) -> None:
    interaction = bot.command("rank")
    view = bot.driver.opened_view(interaction)
    bot.control.reset_stats()

    refused = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-5", BLOCK_RANK: "+10"})

    assert refused.json is not None and refused.json["response_action"] == "errors", refused.body
    assert refused.json["errors"] == {
        BLOCK_RANK: "rank is absolute: lead-5 has rank 5; write 15 to raise it by 10, or 10 to set rank 10."
    }
    assert writes(bot) == 0

    taken = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-5", BLOCK_RANK: "top"})

    assert taken.status == 200 and taken.body == ""
    card = bot.driver.replies(interaction, count=1, timeout=15)[0]
    assert header(card) == "Rank of lead-5: 5 → 31"
    assert WAITING_TOP in plain(caveat(card))
