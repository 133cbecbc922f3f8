"""Look-alike warnings, end to end: an add, or a set that changes the number or the uid, is asked about first
("apply anyway?") when another lead of the list has the same number or a uid differing only by case or spaces; the
question names that lead, nothing is written until the click, and Apply anyway writes once.

The demo: "Spring leads" holds lead-1 … lead-50, lead-n with number +49151 and n in 8 digits (lead-7:
+4915100000007), dialled by an UP RANK campaign whose hopper holds lead-31 … lead-50.
"""

from __future__ import annotations

from typing import Any

import pytest

from commands.modals import BLOCK_LIST, BLOCK_NUMBER, BLOCK_RANK, BLOCK_UID
from sandbox.seed import DEMO_LIST_ID, demo_number
from tests.support import ADD_ROUTE, UPDATE_ROUTE, Bot, caveat, header, is_question, texts, unescape, writes

LEAD_7 = demo_number(7)  # +4915100000007


def plain(text: str) -> str:
    return unescape(text).replace("*", "").replace("`", "")


def asks(bot: Bot, text: str) -> tuple[dict[str, Any], str]:
    """Run `/lead text`: the answer must be an "apply anyway?" question; nothing may be written yet."""
    bot.control.reset_stats()
    interaction = bot.command(text)
    assert interaction.status == 200 and interaction.acked_in_time
    question = bot.driver.replies(interaction, count=1)[0]
    assert is_question(question), f"expected a question, got: {texts(question)}"
    assert writes(bot) == 0
    return question, plain(texts(question))


# ---------------------------------------------------------------------- the same number


def test_add_with_another_leads_number_asks_first_naming_it_then_apply_anyway_adds_once(bot: Bot) -> None:
    question, shown = asks(bot, f'add "Spring leads" new-7 {LEAD_7} 5')

    assert "Not applied yet: Add lead new-7 to Spring leads." in shown
    assert (
        f"Number already in the list: lead lead-7 has {LEAD_7} too; babelforce keeps both leads, so this number can "
        "be called twice."
    ) in shown
    assert "Hopper unknown" not in shown  # an add reads the hopper after writing: nothing to say about it before
    assert bot.lead("new-7") is None

    bot.control.reset_stats()
    card = bot.driver.replies(bot.driver.click(question, "lead_apply_anyway"), count=1)[0]

    assert header(card).startswith("Lead new-7 added")
    assert bot.control.stats()["byRoute"].get(ADD_ROUTE) == 1
    assert bot.lead("new-7").number == LEAD_7 and bot.lead("lead-7").number == LEAD_7
    assert bot.lead_count() == 51


def test_a_number_typed_in_another_spelling_is_the_same_number(bot: Bot) -> None:
    _, shown = asks(bot, 'add "Spring leads" new-7 0049 151 000 000 07 5')

    assert "lead lead-7 has +4915100000007 too" in shown


def test_set_of_another_leads_number_asks_first_naming_it(bot: Bot) -> None:
    question, shown = asks(bot, f'set "Spring leads" lead-8 number={LEAD_7}')

    assert f"Change lead-8: number {demo_number(8)} → {LEAD_7}" in shown
    assert "Number already in the list: lead lead-7 has" in shown
    assert "after this change both leads have it" in shown

    bot.control.reset_stats()
    card = bot.driver.replies(bot.driver.click(question, "lead_apply_anyway"), count=1)[0]

    assert "number" in texts(card)
    assert bot.control.stats()["byRoute"].get(UPDATE_ROUTE) == 1
    assert bot.lead("lead-8").number == LEAD_7


def test_a_new_number_no_other_lead_has_is_written_without_a_question(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('set "Spring leads" lead-8 number=+4915199999998')

    assert not is_question(reply) and "Number already" not in texts(reply)
    assert writes(bot) == 1


def test_a_rank_change_does_not_look_for_look_alikes(bot: Bot) -> None:
    """Only a new number or uid is compared: a rank or data change never asks about lead-8's own number."""
    bot.ask('show "Spring leads" lead-8')  # the lookup index is built
    bot.control.reset_stats()

    reply = bot.ask('set "Spring leads" lead-8 rank=9 city=Bonn')

    assert not is_question(reply)
    assert bot.control.stats()["byRoute"].get("GET /api/v2/outbound/lists/{id}/leads", 0) == 0  # no export


# ---------------------------------------------------------------------- a uid differing only by case or spaces


@pytest.mark.parametrize("uid", ["LEAD-5", '"lead -5"', '" Lead-5 "'])
def test_add_with_a_uid_differing_only_by_case_or_spaces_asks_first(bot: Bot, uid: str) -> None:
    _, shown = asks(bot, f'add "Spring leads" {uid} +4915199999999 5')

    written = uid.strip('"').strip()
    assert (
        f"Similar uid: lead lead-5 is already in the list, and {written} differs only by case or spaces; babelforce "
        f"treats them as different uids, so {written} is added as a second lead rather than changing that one."
    ) in shown
    assert bot.lead_count() == 50


def test_lead_5_beside_lead_5_apply_anyway_writes_once(bot: Bot) -> None:
    question, _ = asks(bot, 'add "Spring leads" LEAD-5 +4915199999999 5')
    bot.control.reset_stats()

    click = bot.driver.click(question, "lead_apply_anyway")
    card = bot.driver.replies(click, count=1)[0]
    again = bot.driver.click(question, "lead_apply_anyway")  # a second click: the question is answered already

    assert header(card).startswith("Lead LEAD-5 added")
    assert "already answered" in texts(bot.driver.replies(again, count=1)[0])
    assert bot.control.stats()["byRoute"].get(ADD_ROUTE) == 1
    assert bot.lead("LEAD-5") is not None and bot.lead("lead-5") is not None
    assert bot.lead_count() == 51


def test_set_of_a_uid_like_another_leads_asks_first_but_recasing_its_own_does_not(bot: Bot) -> None:
    _, shown = asks(bot, 'set "Spring leads" lead-6 uid=LEAD-5')
    assert "Similar uid: lead lead-5 is already in the list, and LEAD-5 differs only by case or spaces" in shown
    assert "so the list would hold two leads that read alike" in shown
    assert bot.lead("lead-6") is not None

    bot.control.reset_stats()
    reply = bot.ask('set "Spring leads" lead-5 uid=LEAD-5')  # its own uid, recased: no other lead looks like it

    assert not is_question(reply), texts(reply)
    assert writes(bot) == 1
    assert bot.lead("LEAD-5") is not None


def test_both_warnings_at_once_are_both_shown(bot: Bot) -> None:
    _, shown = asks(bot, f'add "Spring leads" Lead-7 {LEAD_7} 5')

    assert "Number already in the list: lead lead-7" in shown
    assert "Similar uid: lead lead-7 is already in the list" in shown


def test_an_equal_uid_is_still_babelforces_refusal_not_a_warning(bot: Bot) -> None:
    bot.control.reset_stats()

    reply = bot.ask('add "Spring leads" lead-5 +4915199999999 5')

    assert not is_question(reply)
    assert "uid 'lead-5' already exists in list Spring leads (rank 5)" in texts(reply)
    assert "Number already" not in texts(reply)  # no question about an add babelforce refuses anyway
    assert bot.control.stats()["byRoute"].get(ADD_ROUTE) == 1  # sent, refused (409), recorded as failed
    assert bot.lead_count() == 50


def test_retrying_an_add_whose_lead_exists_is_refused_not_asked_about_its_own_number(bot: Bot) -> None:
    """A supervisor unsure whether an add went through types it again: babelforce's refusal, not a question
    about the number the first add gave that very lead."""
    bot.ask('add "Spring leads" new-9 +4915199999999 5')
    bot.control.reset_stats()

    reply = bot.ask('add "Spring leads" new-9 +4915199999999 5')

    assert not is_question(reply)
    assert "uid 'new-9' already exists in list Spring leads (rank 5)" in texts(reply)
    assert bot.lead_count() == 51


def test_the_add_form_asks_first_too(bot: Bot) -> None:
    interaction = bot.command("add")
    view = bot.driver.opened_view(interaction)
    bot.control.reset_stats()

    submitted = bot.driver.submit(
        view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_UID: "new-7", BLOCK_NUMBER: LEAD_7, BLOCK_RANK: "5"}
    )

    assert submitted.status == 200 and submitted.body == ""
    question = bot.driver.replies(interaction, count=1, timeout=15)[0]
    assert is_question(question)
    assert "Number already in the list: lead lead-7" in plain(texts(question))
    assert writes(bot) == 0


def test_when_the_list_cannot_be_checked_the_add_goes_ahead_with_a_note(bot: Bot) -> None:
    bot.control.faults({"method": "GET", "path": r"/lists/[0-9a-f]+/leads$", "status": 503, "times": None})
    bot.control.reset_stats()

    reply = bot.ask(f'add "Spring leads" new-7 {LEAD_7} 5')

    bot.control.clear_faults()
    assert header(reply).startswith("Lead new-7 added")
    assert "could not check whether another lead of the list has this number and uid" in plain(caveat(reply))
    assert bot.control.stats()["byRoute"].get(ADD_ROUTE) == 1
