"""The queue position on every write's reply, end to end against the sandbox: after a rank (a lead moved to the
head of the next batch, one moved down, one in the hopper), an add, a set, an undo, a remove's undo, a final status,
an UP list (load order kept across the write), and the requests a write costs (none added)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from commands.blocks import ACTION_REMOVE, ACTION_UNDO, BLOCK_CAVEAT, BLOCK_QUEUE, BLOCK_VERDICT
from sandbox import SandboxServer
from sandbox.seed import RENEWALS_LIST_ID
from tests.support import Bot, header, start_bot

EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"


def queue_line(message: dict[str, Any]) -> str:
    (found,) = [b for b in message["blocks"] if b.get("block_id") == BLOCK_QUEUE]
    return found["elements"][0]["text"]


def block_ids(message: dict[str, Any]) -> list[str]:
    return [b.get("block_id", "") for b in message["blocks"]]


def click(bot: Bot, message: dict[str, Any], action_id: str) -> dict[str, Any]:
    clicked = bot.driver.click(message, action_id)
    assert clicked.status == 200 and clicked.acked_in_time, clicked
    return bot.driver.replies(clicked, count=1)[0]


# The demo: campaign Spring outreach (UP RANK) dials Spring leads, lead-n has rank n; the hopper holds lead-50 …
# lead-31 (20), lead-30 … lead-1 wait.


def test_a_rank_that_heads_the_next_batch_counts_its_new_rank_not_its_old(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-10 35')  # the first command: nothing was shown or cached before
    # with its old rank 10 it would have 20 waiting leads of a higher rank ahead of it; with 35 none
    assert queue_line(reply) == (
        "Queue: waiting: about 20 leads ahead of it (20 in the hopper, 0 waiting with higher rank)."
    )
    ids = block_ids(reply)
    assert ids[0] == BLOCK_VERDICT and ids.index(BLOCK_CAVEAT) < ids.index(BLOCK_QUEUE)  # verdict, caveat, fact


def test_a_rank_moved_down_counts_the_leads_now_ahead_of_it(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-25')  # the standings are cached from here on: the write keeps them in step
    reply = bot.ask('rank "Spring leads" lead-25 3')
    # lead-30 … lead-26 and lead-24 … lead-4 outrank 3
    assert queue_line(reply) == (
        "Queue: waiting: about 46 leads ahead of it (20 in the hopper, 26 waiting with higher rank)."
    )
    again = bot.ask('show "Spring leads" lead-24')  # show reads the same kept standings: lead-25 is behind it now
    assert queue_line(again) == (
        "Queue: waiting: about 25 leads ahead of it (20 in the hopper, 5 waiting with higher rank)."
    )


def test_a_lead_in_the_hopper_keeps_its_place_whatever_its_new_rank(bot: Bot) -> None:
    reply = bot.apply('rank "Spring leads" lead-40 5')  # loaded: the update is not seen by this batch (asks first)
    assert queue_line(reply) == "Queue: in the hopper, position 11 of 20."


def test_an_add_tells_where_the_new_lead_waits(bot: Bot) -> None:
    reply = bot.ask('add "Spring leads" queue-1 +4915199990001 5')
    assert queue_line(reply) == (
        "Queue: waiting: about 45 leads ahead of it (20 in the hopper, 25 waiting with higher rank)."
    )


def test_an_add_the_short_hopper_takes_at_once_is_in_the_hopper(bot: Bot) -> None:
    reply = bot.ask("add Renewals renewal-new +4917099990001 1")  # 10 leads, hopper minimum 20: loaded at once
    assert queue_line(reply) == "Queue: in the hopper, position 11 of 11."


def test_a_set_tells_the_place_it_left_unchanged(bot: Bot) -> None:
    reply = bot.ask('set "Spring leads" lead-14 city=Bonn')
    assert queue_line(reply) == (
        "Queue: waiting: about 36 leads ahead of it (20 in the hopper, 16 waiting with higher rank)."
    )
    moved = bot.ask('set "Spring leads" lead-14 rank=29')
    assert queue_line(moved) == (
        "Queue: waiting: about 21 leads ahead of it (20 in the hopper, 1 waiting with higher rank)."
    )


def test_undo_of_a_rank_tells_the_place_it_goes_back_to(bot: Bot) -> None:
    card = bot.ask('rank "Spring leads" lead-10 35')
    undone = click(bot, card, ACTION_UNDO)
    assert header(undone) == "Undone: rank of lead-10 restored"
    assert queue_line(undone) == (
        "Queue: waiting: about 40 leads ahead of it (20 in the hopper, 20 waiting with higher rank)."
    )


def test_undo_of_a_remove_tells_where_the_lead_added_back_waits(bot: Bot) -> None:
    question = bot.driver.replies(bot.command('remove "Spring leads" lead-8'), count=1)[0]
    removed = click(bot, question, ACTION_REMOVE)
    assert BLOCK_QUEUE not in block_ids(removed)  # the lead is gone: no place in line
    back = click(bot, removed, ACTION_UNDO)
    assert queue_line(back) == (
        "Queue: waiting: about 42 leads ahead of it (20 in the hopper, 22 waiting with higher rank)."
    )


def test_a_final_status_is_not_in_line_at_all(bot: Bot) -> None:
    with bot.sandbox.state.lock:
        bot.lead("lead-20").status = "do_not_call"
    reply = bot.apply('rank "Spring leads" lead-20 45')  # a final status: rank does nothing (asks first)
    assert queue_line(reply) == "Queue: not in line: status do_not_call is final; it is never dialled again."


def test_a_list_no_campaign_dials(bot: Bot) -> None:
    reply = bot.apply('rank "Autumn leads" autumn-3 7')
    assert queue_line(reply) == "Queue: not in line: no active campaign dials this list."


def test_a_write_adds_no_babelforce_request(bot: Bot) -> None:
    """The same commands, in the same order, cost this before the queue line existed (measured on the commit before
    it): warm show 3, rank 4 (the hopper's last lead was read by the first rank), set 4, add 3; and no export."""
    bot.ask('rank "Spring leads" lead-10 35')
    counts: dict[str, int] = {}
    for name, text in (
        ("show", 'show "Spring leads" lead-12'),
        ("rank", 'rank "Spring leads" lead-12 13'),
        ("set", 'set "Spring leads" lead-14 city=Bonn'),
        ("add", 'add "Spring leads" queue-2 +4915199990002 5'),
    ):
        bot.control.reset_stats()
        reply = bot.ask(text)
        assert queue_line(reply).startswith("Queue: waiting: about"), name
        stats = bot.control.stats()
        counts[name] = stats["total"]
        assert stats["byRoute"].get(EXPORT_ROUTE, 0) == 0, name
    assert counts == {"show": 3, "rank": 4, "set": 4, "add": 3}


def test_standings_not_at_hand_leave_the_count_out_and_cost_nothing(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.service.QUEUE_BUILD_MAX_LEADS", 0)  # as for a list too big to build before a write
    bot.control.reset_stats()
    reply = bot.ask('rank "Spring leads" lead-12 13')
    assert queue_line(reply) == "Queue: waiting; 20 in the hopper are ahead of it, the rest is not known."
    assert bot.control.count(EXPORT_ROUTE) == 1  # the lookup's own export (the bot's first command), no other
    bot.ask('show "Spring leads" lead-12')  # show builds the standings from the same export: no second one
    again = bot.ask('rank "Spring leads" lead-12 14')
    assert queue_line(again) == (
        "Queue: waiting: about 36 leads ahead of it (20 in the hopper, 16 waiting with higher rank)."
    )
    assert bot.control.count(EXPORT_ROUTE) == 1


# ---------------------------------------------------------------------- an UP list: the load order survives a write


@pytest.fixture
def short_hopper(sandbox_factory: Callable[..., SandboxServer]) -> Iterator[Bot]:
    """Hopper minimum 5: Renewals (list order UP, renewal-1 … renewal-10 loaded in that order) has renewal-10 …
    renewal-6 in its hopper; renewal-5 … renewal-1 wait, the last loaded first."""
    yield from start_bot(sandbox_factory(seed="demo", hopper_size=5))


def test_under_up_a_write_leaves_the_lead_where_it_was_loaded(short_hopper: Bot) -> None:
    bot = short_hopper
    reply = bot.apply("rank Renewals renewal-3 900")  # rank does not order an UP list (asks first)
    assert queue_line(reply) == (
        "Queue: waiting: about 7 leads ahead of it (5 in the hopper, 2 waiting loaded after it (list order UP))."
    )
    changed = bot.ask("set Renewals renewal-3 city=Bonn")
    assert queue_line(changed) == queue_line(reply)
    added = bot.ask("add Renewals renewal-11 +4917099990011 1")  # loaded last: under UP, first of the waiting
    assert queue_line(added) == (
        "Queue: waiting: about 5 leads ahead of it (5 in the hopper, 0 waiting loaded after it (list order UP))."
    )
    assert bot.lead("renewal-3", RENEWALS_LIST_ID).rank == 900
