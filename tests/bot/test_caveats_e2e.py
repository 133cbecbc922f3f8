"""The hopper caveats end to end: a `/lead` command through the real Bolt app changes the sandbox, and the reply's
caveat says, with the numbers, what the dialer will do with the change; the sandbox's dialer then does just that."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from sandbox import SandboxServer
from sandbox.seed import (
    AUTUMN_LIST_ID,
    DEMO_CAMPAIGN_ID,
    RENEWALS_CAMPAIGN_ID,
    RENEWALS_LIST_ID,
)
from tests.support import ADD_ROUTE, Bot, caveat, header, hopper_uids, snapshot, start_bot, texts

OLD_HOPPER = [f"lead-{n}" for n in range(50, 30, -1)]  # the demo's hopper: the 20 highest ranks, in dial order


@pytest.fixture
def small_hopper_bot(sandbox_factory: Callable[..., SandboxServer]) -> Iterator[Bot]:
    """The bot in front of a demo sandbox whose hopper holds 5 leads (so Renewals has leads outside it)."""
    yield from start_bot(sandbox_factory(seed="demo", hopper_size=5))


def test_demo_hopper_is_the_articles(bot: Bot) -> None:
    """The premise of every test below: 50 leads ranked 1..50, hopper of the 20 highest in rank order."""
    assert hopper_uids(bot, DEMO_CAMPAIGN_ID) == OLD_HOPPER


# ---------------------------------------------------------------------- 1. already in the hopper


def test_caveat_in_hopper_rank_change_keeps_position_11_of_20(bot: Bot) -> None:
    reply = bot.apply('rank "Spring leads" lead-40 45')

    assert header(reply) == "Rank of lead-40: 40 → 45"
    text = caveat(reply)
    assert "Already in the hopper" in text
    assert "position 11 of 20" in text
    assert "not taken into account for this dial" in text
    assert bot.lead("lead-40").rank == 45
    assert hopper_uids(bot, DEMO_CAMPAIGN_ID) == OLD_HOPPER  # it kept its place


# ---------------------------------------------------------------------- 2. ahead of the hopper: next batch


def test_caveat_next_batch_lead_10_to_100_heads_the_next_hopper(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-10 100')

    text = caveat(reply)
    assert "Not in the current batch" in text
    assert "rank 100" in text
    assert "first of the next batch, after the 20 leads" in text
    assert bot.lead("lead-10").rank == 100
    assert "lead-10" not in hopper_uids(bot, DEMO_CAMPAIGN_ID)

    bot.control.dial(DEMO_CAMPAIGN_ID, 20)

    assert hopper_uids(bot, DEMO_CAMPAIGN_ID)[0] == "lead-10"


# ---------------------------------------------------------------------- 3. UP / DOWN: rank is ignored


def test_caveat_up_order_rank_does_not_change_the_dial_order(small_hopper_bot: Bot) -> None:
    bot = small_hopper_bot
    assert hopper_uids(bot, RENEWALS_CAMPAIGN_ID) == [f"renewal-{n}" for n in range(10, 5, -1)]  # UP: last first

    reply = bot.apply("rank Renewals renewal-2 200")

    text = caveat(reply)
    assert "Rank does not change the dial order" in text
    assert "Renewals" in text
    assert "list order UP (last loaded first)" in text
    assert "Already in the hopper" not in text
    assert bot.lead("renewal-2", RENEWALS_LIST_ID).rank == 200
    # The dialer proves it: the next batch is still in load order, the rank-200 lead is not first.
    bot.control.dial(RENEWALS_CAMPAIGN_ID, 5)
    assert hopper_uids(bot, RENEWALS_CAMPAIGN_ID) == [f"renewal-{n}" for n in range(5, 0, -1)]


def test_caveat_up_order_on_a_lead_in_the_hopper_says_both(small_hopper_bot: Bot) -> None:
    reply = small_hopper_bot.apply("rank Renewals renewal-9 200")

    text = caveat(reply)
    assert "Already in the hopper" in text
    assert "position 2 of 5" in text
    assert "Rank does not change the dial order" in text


# ---------------------------------------------------------------------- 4. not dialled by any campaign


def test_caveat_not_dialled_for_a_list_no_campaign_dials(bot: Bot) -> None:
    reply = bot.apply('rank "Autumn leads" autumn-3 50')

    text = caveat(reply)
    assert "Not dialled now" in text
    assert "no campaign dials list *Autumn leads*" in text
    assert "applies when a campaign dials this list" in text
    assert bot.lead("autumn-3", AUTUMN_LIST_ID).rank == 50


def test_caveat_not_dialled_when_the_lists_campaign_is_inactive(bot: Bot) -> None:
    with bot.sandbox.state.lock:
        bot.sandbox.state.update_campaign(DEMO_CAMPAIGN_ID, active=False)

    reply = bot.apply('rank "Spring leads" lead-10 100')

    text = caveat(reply)
    assert "Not dialled now" in text
    assert "*Spring outreach* that dials *Spring leads* is not active" in text
    assert bot.lead("lead-10").rank == 100


# ---------------------------------------------------------------------- 5. final status


def test_caveat_final_status_after_a_sale(bot: Bot) -> None:
    dialled = bot.control.dial(DEMO_CAMPAIGN_ID, 1, status="sale")
    assert [lead["uid"] for lead in dialled] == ["lead-50"]

    reply = bot.apply('rank "Spring leads" lead-50 60')

    text = caveat(reply)
    assert "Will not be dialled again" in text
    assert "`sale`" in text
    lead = bot.lead("lead-50")
    assert (lead.rank, lead.status) == (60, "sale")
    assert "lead-50" not in hopper_uids(bot, DEMO_CAMPAIGN_ID)


@pytest.mark.parametrize("status", ["do_not_call", "not_interested"])
def test_caveat_final_status_set_in_the_sandbox(bot: Bot, status: str) -> None:
    with bot.sandbox.state.lock:
        bot.lead("lead-20").status = status

    reply = bot.apply('rank "Spring leads" lead-20 99')

    text = caveat(reply)
    assert "Will not be dialled again" in text
    assert f"`{status}`" in text
    assert bot.lead("lead-20").rank == 99
    bot.control.dial(DEMO_CAMPAIGN_ID, 20)
    assert "lead-20" not in hopper_uids(bot, DEMO_CAMPAIGN_ID)  # rank 99 would head the batch if it were dialable


# ---------------------------------------------------------------------- 6. new lead ranked above the hopper


def test_caveat_new_lead_with_rank_500_is_called_after_the_current_batch(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('add "Spring leads" new-500 +4915199990500 500')

    assert header(reply) == "Lead new-500 added"
    text = caveat(reply)
    assert "Called after the current batch" in text
    assert "rank 500 puts it before the hopper's last lead (rank 31)" in text
    assert "it is called after the 20 leads in the hopper" in text
    lead = bot.lead("new-500")
    assert (lead.number, lead.rank) == ("+4915199990500", 500)
    assert bot.control.count(ADD_ROUTE) == 1
    assert hopper_uids(bot, DEMO_CAMPAIGN_ID) == OLD_HOPPER


# ---------------------------------------------------------------------- no caveat


def test_no_caveat_lead_10_to_20_takes_effect_at_next_refill(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-10 20')

    text = caveat(reply)
    assert "Takes effect at the next hopper refill" in text
    assert "20 leads loaded" in text
    for warning in ("Already in the hopper", "Not in the current batch", "Not dialled now", "Will not be dialled"):
        assert warning not in text
    assert bot.lead("lead-10").rank == 20


# ---------------------------------------------------------------------- the help article's two examples


def test_article_update_of_the_lead_ranked_40_is_not_considered_because_it_is_in_the_hopper(bot: Bot) -> None:
    """The article's PUT example (rank 200, data) on the lead ranked 40: it is in the hopper, so the update is
    not taken into consideration for this batch: it is still dialled 11th, not first."""
    before = snapshot(bot, "lead-40")

    reply = bot.apply('set "Spring leads" lead-40 rank=200 address="martin mendalde" "new data"=new')

    assert "position 11 of 20" in caveat(reply)
    assert "not taken into account for this dial" in caveat(reply)
    after = bot.lead("lead-40")
    assert after.rank == 200
    assert after.data == {**before.data, "address": "martin mendalde", "new data": "new"}
    dialled = bot.control.dial(DEMO_CAMPAIGN_ID, 11)
    assert [lead["uid"] for lead in dialled] == OLD_HOPPER[:11]  # lead-40 still 11th despite rank 200


def test_article_lead_ranked_10_changed_to_100_ends_up_at_the_top_of_the_next_hopper_batch(bot: Bot) -> None:
    """The article's second example: rank 10 -> 100 is not considered for the current batch; the 20 loaded
    leads are dialled first (the delay), then lead-10 before every other lead."""
    reply = bot.ask('rank "Spring leads" lead-10 100')

    assert "Rank of lead-10: 10 → 100" in texts(reply)
    assert "first of the next batch, after the 20 leads" in caveat(reply)
    assert [lead["uid"] for lead in bot.control.dial(DEMO_CAMPAIGN_ID, 20)] == OLD_HOPPER
    assert [lead["uid"] for lead in bot.control.dial(DEMO_CAMPAIGN_ID, 1)] == ["lead-10"]


def test_show_states_hopper_position_or_not(bot: Bot) -> None:
    inside = bot.ask('show "Spring leads" lead-31')
    outside = bot.ask('show "Spring leads" lead-30')

    assert "In the hopper* at position 20 of 20" in caveat(inside)
    assert "Not in the hopper* (20 leads loaded)" in caveat(outside)


# ---------------------------------------------------------------------- hopper entries without an id


def test_hopper_entries_without_an_id_are_found_by_list_id_and_uid(bot: Bot) -> None:
    """The spec makes every hopper field optional: with no `id` in any entry, the same caveats, the same numbers
    (the hopper's last lead, whose rank bounds "ahead of the hopper", is found by its uid)."""
    bot.control.faults({"drop_fields": ["id"], "path": "/hopper$", "times": None})

    inside = bot.ask('show "Spring leads" lead-40')
    outside = bot.ask('show "Spring leads" lead-30')
    question = bot.command('rank "Spring leads" lead-39 44')
    ahead = bot.ask('rank "Spring leads" lead-11 100')

    assert "In the hopper* at position 11 of 20" in caveat(inside)
    assert "Not in the hopper* (20 leads loaded)" in caveat(outside)
    assert "position 12 of 20" in texts(bot.driver.replies(question)[0])  # "apply anyway?": it is loaded
    assert bot.lead("lead-39").rank == 39  # not written: asked first
    assert "first of the next batch, after the 20 leads" in caveat(ahead)
    assert "rank 31" in caveat(ahead)  # the bound: the hopper's last lead, lead-31, read by its uid


def test_hopper_entries_naming_no_lead_make_the_hopper_unknown_for_a_lead_not_found_never_fatal(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """Entries with neither an id nor a list id + uid: the hopper is still read (not an error); a lead that matches
    no entry may be one of them, so the reply says the hopper is unknown, and why, instead of "not in the hopper"."""
    caplog.set_level(logging.WARNING)
    bot.control.faults({"drop_fields": ["id", "uid"], "path": "/hopper$", "times": None})

    shown = bot.ask('show "Spring leads" lead-40')

    assert "Hopper unknown" in caveat(shown)
    assert "(20 of its 20 entries name no lead)" in caveat(shown)
    assert "Lead lead-40" in header(shown)
    warned = [r.getMessage() for r in caplog.records if "name no lead" in r.getMessage()]
    assert len(warned) == 1  # once for the one read


def test_a_hopper_answered_success_false_is_unknown_with_babelforces_reason_not_http_200(bot: Bot) -> None:
    bot.control.faults(
        {"status": 200, "body": {"success": False, "message": "Hopper busy"}, "path": "/hopper$", "times": None}
    )

    shown = bot.ask('show "Spring leads" lead-40')

    assert "Hopper unknown" in caveat(shown)
    assert "(babelforce reported a failure)" in caveat(shown)
    assert "HTTP 200" not in texts(shown)


# ---------------------------------------------------------------------- the campaign as it is now


def test_caveat_follows_a_campaign_deactivated_a_moment_ago(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-40')  # the bot has been serving: its directory is warm
    with bot.sandbox.state.lock:
        bot.sandbox.state.update_campaign(DEMO_CAMPAIGN_ID, active=False)

    reply = bot.apply('rank "Spring leads" lead-10 100')

    assert "Not dialled now" in caveat(reply)


def test_caveat_follows_a_list_order_changed_a_moment_ago(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-40')
    with bot.sandbox.state.lock:
        bot.sandbox.state.update_campaign(DEMO_CAMPAIGN_ID, list_order="UP")

    reply = bot.apply('rank "Spring leads" lead-10 100')

    assert "Rank does not change the dial order" in caveat(reply)


def test_caveat_hopper_unknown_when_it_cannot_be_read_and_the_change_still_applies(bot: Bot) -> None:
    bot.control.faults({"method": "GET", "path": r"/hopper$", "status": 503, "times": None})

    reply = bot.ask('rank "Spring leads" lead-10 100')

    text = caveat(reply)
    assert "Hopper unknown" in text
    assert "Spring outreach" in text
    assert "HTTP 503" in text
    assert bot.lead("lead-10").rank == 100


def test_caveat_does_not_promise_the_next_batch_to_a_lead_already_called(bot: Bot) -> None:
    (called,) = bot.control.dial(DEMO_CAMPAIGN_ID, 1)  # the dialer's default outcome: no_answer
    assert (called["uid"], called["status"]) == ("lead-50", "no_answer")

    reply = bot.ask('rank "Spring leads" lead-50 100')

    bot.control.dial(DEMO_CAMPAIGN_ID, 20)
    assert "lead-50" not in hopper_uids(bot, DEMO_CAMPAIGN_ID)  # the dialer did not take it back
    assert "first of the next batch" not in caveat(reply)


# ---------------------------------------------------------------------- what the dialer really did


def test_unreadable_campaign_is_reported_as_unknown_not_as_not_dialled(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-1')  # the campaign directory is now cached; the campaign itself is not
    bot.control.faults({"method": "GET", "path": r"/campaigns/[0-9a-f]+$", "status": 500, "times": None})

    reply = bot.ask('rank "Spring leads" lead-40 45')

    text = caveat(reply)
    assert "Dialer state unknown" in text
    assert "(HTTP 500)" in text
    assert "Not dialled now" not in text
    assert bot.lead("lead-40").rank == 45


def test_a_new_lead_taken_straight_into_a_short_hopper_is_told_its_position(bot: Bot) -> None:
    bot.control.dial(DEMO_CAMPAIGN_ID, 20)
    bot.control.dial(DEMO_CAMPAIGN_ID, 20)  # 10 dialable leads left: the hopper is below its minimum of 20
    assert len(bot.sandbox.state.hopper(DEMO_CAMPAIGN_ID)) == 10

    reply = bot.ask('add "Spring leads" fresh-1 +4916098119991 0')

    uids = [entry.uid for entry in bot.sandbox.state.hopper(DEMO_CAMPAIGN_ID)]
    assert "fresh-1" in uids
    position = uids.index("fresh-1") + 1
    expected = f"went straight in at position {position} of {len(uids)}; it is dialled in this batch"
    assert "Loaded at once" in caveat(reply)
    assert expected in caveat(reply)
