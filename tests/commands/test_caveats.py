"""Hopper caveats: the article's scenarios, one test per rule, asserting the kind and the numbers in the text.

The article's example: a list of 50 leads ranked 50..1, a hopper of 20 loaded under UP RANK, so the hopper holds the
leads ranked 50..31 (the lead ranked 40 sits at position 11) and the hopper's last rank is 31.
"""

from __future__ import annotations

import pytest

from babelforce.models import Campaign, HopperEntry, Lead
from commands.caveat_text import campaign_line, caveat_text
from commands.caveats import (
    NO_EFFECT_NOW,
    WARNINGS,
    CaveatKind,
    DialContext,
    change_caveats,
    lead_state,
    needs_last_hopper_rank,
)

LIST_NAME = "Spring leads"
CAMPAIGN_NAME = "Spring calls"
CAMPAIGN_ID = "3d468d1a3f184c51abad810f65bfca4b"
LIST_ID = "cfd395e2301b45f78a0f6abddbe15a4e"


def lead_id(n: int) -> str:
    """The id of the lead loaded with rank n (32 hex digits, as babelforce sends them)."""
    return f"{n:032x}"


def make_lead(n: int, rank: int | None, status: str | None = "pending", **data: str) -> Lead:
    return Lead(
        id=lead_id(n), uid=f"lead-{n}", list_id=LIST_ID, number="4916098119998", rank=rank, status=status, data=data
    )


def make_campaign(order: str | None = "UP RANK", active: bool | None = True, name: str = CAMPAIGN_NAME) -> Campaign:
    return Campaign(id=CAMPAIGN_ID, name=name, active=active, list_order=order)


def make_hopper(ranks: range | list[int]) -> tuple[HopperEntry, ...]:
    """Hopper entries for the leads of these ranks, in dial order; `order` as a string, as the dialer sends it."""
    return tuple(
        HopperEntry(id=lead_id(rank), uid=f"lead-{rank}", list_id=LIST_ID, status="pending", order=str(position))
        for position, rank in enumerate(ranks, start=1)
    )


#: UP RANK over leads ranked 50..1: the hopper holds 50..31.
ARTICLE_HOPPER = make_hopper(range(50, 30, -1))
#: DOWN RANK over leads ranked 1..50: the hopper holds 1..20 (the article's example mirrored).
DOWN_HOPPER = make_hopper(range(1, 21))


def article_context(
    order: str | None = "UP RANK",
    *,
    hopper: tuple[HopperEntry, ...] | None = ARTICLE_HOPPER,
    last_hopper_rank: int | None = 31,
    active: bool | None = True,
    hopper_error: str | None = None,
) -> DialContext:
    return DialContext(LIST_NAME, make_campaign(order, active), hopper, hopper_error, last_hopper_rank)


def kinds(caveats: tuple) -> tuple[CaveatKind, ...]:
    return tuple(caveat.kind for caveat in caveats)


# --- caveat 1: already in the hopper ------------------------------------------------------------------------------


def test_rank_change_of_lead_in_hopper_is_ignored_at_its_position() -> None:
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 200), article_context())
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert "position 11 of 20" in caveat_text(caveats[0])
    assert "not taken into account" in caveat_text(caveats[0])


def test_data_change_of_lead_in_hopper_is_ignored_at_its_position() -> None:
    before = make_lead(40, 40, address="old street")
    after = make_lead(40, 40, address="martin mendalde")
    caveats = change_caveats("set", before, after, article_context())
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert "position 11 of 20" in caveat_text(caveats[0])


def test_in_hopper_position_falls_back_to_index_when_order_is_missing() -> None:
    hopper = tuple(HopperEntry(id=entry.id) for entry in ARTICLE_HOPPER)  # no `order` sent
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 200), article_context(hopper=hopper))
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert "position 11 of 20" in caveat_text(caveats[0])


def test_in_hopper_position_is_the_entry_order_not_the_index() -> None:
    hopper = (HopperEntry(id=lead_id(1), order="2"), HopperEntry(id=lead_id(2), order="1"))  # listed out of order
    caveats = change_caveats("rank", make_lead(1, 5), make_lead(1, 6), article_context(hopper=hopper))
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert "position 2 of 2" in caveat_text(caveats[0])


# --- caveat 2: moved ahead of the hopper, heads the next batch -----------------------------------------------------


def test_rank_moved_ahead_under_up_rank_heads_the_next_batch() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context())
    assert kinds(caveats) == (CaveatKind.NEXT_BATCH,)
    text = caveat_text(caveats[0])
    assert "rank 100" in text
    assert "first of the next batch" in text
    assert "20 leads" in text


def test_rank_moved_ahead_under_down_rank_heads_the_next_batch() -> None:
    context = article_context("DOWN RANK", hopper=DOWN_HOPPER, last_hopper_rank=20)
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, -5), context)
    assert kinds(caveats) == (CaveatKind.NEXT_BATCH,)
    text = caveat_text(caveats[0])
    assert "rank -5" in text
    assert "first of the next batch" in text
    assert "20 leads" in text


def test_rank_raised_under_down_rank_is_not_ahead() -> None:
    context = article_context("DOWN RANK", hopper=DOWN_HOPPER, last_hopper_rank=20)
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 100), context)
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "20 leads loaded" in caveat_text(caveats[0])


@pytest.mark.parametrize(
    ("order", "hopper", "lead", "last"),
    [("UP RANK", ARTICLE_HOPPER, 10, 31), ("DOWN RANK", DOWN_HOPPER, 40, 20)],
)
def test_rank_equal_to_the_hopper_last_rank_is_not_ahead(
    order: str, hopper: tuple[HopperEntry, ...], lead: int, last: int
) -> None:
    context = article_context(order, hopper=hopper, last_hopper_rank=last)
    caveats = change_caveats("rank", make_lead(lead, lead), make_lead(lead, last), context)
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)


def test_moved_ahead_without_a_known_last_rank_is_not_next_batch() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context(last_hopper_rank=None))
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)


# --- caveat 3: the list order ignores rank --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "shown"),
    [("UP", "list order UP (last loaded first)"), ("DOWN", "list order DOWN (first loaded first)")],
)
def test_rank_change_under_up_or_down_order_changes_nothing(order: str, shown: str) -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context(order))
    assert kinds(caveats) == (CaveatKind.ORDER_IGNORES_RANK,)
    assert shown in caveat_text(caveats[0])
    assert f"*{CAMPAIGN_NAME}*" in caveat_text(caveats[0])


def test_missing_list_order_behaves_as_up() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context(None))
    assert kinds(caveats) == (CaveatKind.ORDER_IGNORES_RANK,)
    assert "list order UP (last loaded first)" in caveat_text(caveats[0])


def test_unknown_list_order_ignores_rank_and_names_the_order() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context("RANDOM"))
    assert kinds(caveats) == (CaveatKind.ORDER_IGNORES_RANK,)
    assert "list order RANDOM," in caveat_text(caveats[0])


def test_rank_change_in_hopper_under_up_order_gives_both_caveats() -> None:
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 200), article_context("UP"))
    assert kinds(caveats) == (CaveatKind.IN_HOPPER, CaveatKind.ORDER_IGNORES_RANK)
    assert "position 11 of 20" in caveat_text(caveats[0])
    assert "list order UP" in caveat_text(caveats[1])


def test_data_change_in_hopper_under_up_order_is_only_in_hopper() -> None:
    before, after = make_lead(40, 40, a="1"), make_lead(40, 40, a="2")
    caveats = change_caveats("set", before, after, article_context("UP"))
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)


# --- caveat 4: no active campaign dials the list ---------------------------------------------------------------------


def test_list_without_campaign_is_not_dialled() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), DialContext(LIST_NAME))
    assert kinds(caveats) == (CaveatKind.NOT_DIALLED,)
    assert f"no campaign dials list *{LIST_NAME}*" in caveat_text(caveats[0])
    assert "The change applies when a campaign dials this list." in caveat_text(caveats[0])


@pytest.mark.parametrize("active", [False, None])
def test_list_of_inactive_campaign_is_not_dialled(active: bool | None) -> None:
    context = article_context(active=active)
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 200), context)
    assert kinds(caveats) == (CaveatKind.NOT_DIALLED,)
    assert f"campaign *{CAMPAIGN_NAME}* that dials *{LIST_NAME}* is not active" in caveat_text(caveats[0])


def test_add_to_undialled_list_says_the_rank_applies_later() -> None:
    caveats = change_caveats("add", None, make_lead(100, 100), DialContext(LIST_NAME))
    assert kinds(caveats) == (CaveatKind.NOT_DIALLED,)
    assert "The rank applies when a campaign dials this list." in caveat_text(caveats[0])


def test_not_dialled_text_escapes_list_and_campaign_names() -> None:
    context = DialContext("A<b>&c", make_campaign(active=False, name="<!channel>"))
    caveats = change_caveats("rank", make_lead(1, 1), make_lead(1, 2), context)
    assert kinds(caveats) == (CaveatKind.NOT_DIALLED,)
    assert "*A&lt;b&gt;&amp;c*" in caveat_text(caveats[0])
    assert "*&lt;!channel&gt;*" in caveat_text(caveats[0])
    assert "<" not in caveat_text(caveats[0])


# --- caveat 5: final outcome ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["sale", "do_not_call", "not_interested"])
def test_final_status_is_never_dialled_again(status: str) -> None:
    caveats = change_caveats("rank", make_lead(10, 10, status), make_lead(10, 100, status), article_context())
    assert kinds(caveats) == (CaveatKind.FINAL_STATUS,)
    assert f"`{status}`" in caveat_text(caveats[0])


def test_final_status_wins_over_being_in_the_hopper() -> None:
    caveats = change_caveats("rank", make_lead(40, 40, "sale"), make_lead(40, 200, "sale"), article_context())
    assert kinds(caveats) == (CaveatKind.FINAL_STATUS,)


def test_final_status_on_undialled_list_gives_both() -> None:
    before, after = make_lead(10, 10, "do_not_call"), make_lead(10, 100, "do_not_call")
    caveats = change_caveats("rank", before, after, DialContext(LIST_NAME))
    assert kinds(caveats) == (CaveatKind.NOT_DIALLED, CaveatKind.FINAL_STATUS)
    assert f"*{LIST_NAME}*" in caveat_text(caveats[0])
    assert "`do_not_call`" in caveat_text(caveats[1])


def test_final_status_text_names_the_final_status_that_triggered_it() -> None:
    caveats = change_caveats("set", make_lead(10, 10, "pending"), make_lead(10, 10, "sale"), article_context())
    assert kinds(caveats) == (CaveatKind.FINAL_STATUS,)
    assert "`sale`" in caveat_text(caveats[0])


# --- caveat 6: a new lead is not compared with the hopper -----------------------------------------------------------


def test_new_lead_ranked_ahead_is_called_after_the_batch() -> None:
    caveats = change_caveats("add", None, make_lead(100, 500), article_context())
    assert kinds(caveats) == (CaveatKind.NEW_LEAD_AFTER_BATCH,)
    assert "rank 500" in caveat_text(caveats[0])
    assert "20 leads" in caveat_text(caveats[0])


def test_new_lead_ranked_ahead_under_down_rank_is_called_after_the_batch() -> None:
    context = article_context("DOWN RANK", hopper=DOWN_HOPPER, last_hopper_rank=20)
    caveats = change_caveats("add", None, make_lead(100, -100), context)
    assert kinds(caveats) == (CaveatKind.NEW_LEAD_AFTER_BATCH,)
    assert "rank -100" in caveat_text(caveats[0])


def test_add_found_in_the_hopper_read_after_the_write_was_loaded_at_once() -> None:
    caveats = change_caveats("add", None, make_lead(40, 500), article_context())
    assert kinds(caveats) == (CaveatKind.LOADED_NOW,)
    assert "position 11 of 20" in caveat_text(caveats[0])


def test_add_under_up_order_says_rank_is_not_used() -> None:
    caveats = change_caveats("add", None, make_lead(100, 500), article_context("UP"))
    assert kinds(caveats) == (CaveatKind.ORDER_IGNORES_RANK,)


# --- no caveat: the change counts from the next refill --------------------------------------------------------------


def test_rank_raised_but_not_ahead_takes_effect_at_next_refill() -> None:
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 20), article_context())
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "20 leads loaded" in caveat_text(caveats[0])
    assert "The dialer uses the new values" in caveat_text(caveats[0])


def test_data_only_set_under_up_order_takes_effect_at_next_refill() -> None:
    before, after = make_lead(10, 10, a="1"), make_lead(10, 10, a="2")
    caveats = change_caveats("set", before, after, article_context("UP"))
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "20 leads loaded" in caveat_text(caveats[0])


def test_add_not_ahead_takes_effect_at_next_refill() -> None:
    caveats = change_caveats("add", None, make_lead(100, 5), article_context())
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "The dialer loads the new lead at a later refill" in caveat_text(caveats[0])
    assert "20 leads loaded" in caveat_text(caveats[0])


def test_refill_text_counts_one_lead_in_the_singular() -> None:
    context = article_context(hopper=make_hopper([50]), last_hopper_rank=50)
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 20), context)
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "(1 lead loaded)" in caveat_text(caveats[0])


# --- hopper unknown / empty -----------------------------------------------------------------------------------------


def test_unreadable_hopper_gives_hopper_unknown_with_the_reason() -> None:
    context = article_context(hopper=None, hopper_error="HTTP 503", last_hopper_rank=None)
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), context)
    assert kinds(caveats) == (CaveatKind.HOPPER_UNKNOWN,)
    assert "(HTTP 503)" in caveat_text(caveats[0])
    assert f"*{CAMPAIGN_NAME}*" in caveat_text(caveats[0])


def test_unreadable_hopper_without_reason_has_no_empty_parentheses() -> None:
    context = article_context(hopper=None, last_hopper_rank=None)
    caveats = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), context)
    assert kinds(caveats) == (CaveatKind.HOPPER_UNKNOWN,)
    assert "()" not in caveat_text(caveats[0])


@pytest.mark.parametrize(("order", "rank"), [("UP RANK", 32767), ("DOWN RANK", -32768)])
@pytest.mark.parametrize("action", ["add", "rank"])
def test_empty_hopper_is_never_next_batch(order: str, rank: int, action: str) -> None:
    context = article_context(order, hopper=(), last_hopper_rank=31)  # a stale last rank must not count
    before = None if action == "add" else make_lead(10, 10)
    caveats = change_caveats(action, before, make_lead(10, rank), context)  # type: ignore[arg-type]
    assert kinds(caveats) == (CaveatKind.NEXT_REFILL,)
    assert "0 leads loaded" in caveat_text(caveats[0])


# --- lead_state (show) ----------------------------------------------------------------------------------------------


def test_state_of_lead_in_hopper() -> None:
    state = lead_state(make_lead(40, 40), article_context())
    assert state.kind == CaveatKind.IN_HOPPER
    assert "position 11 of 20" in caveat_text(state)


def test_state_of_lead_not_in_hopper() -> None:
    state = lead_state(make_lead(10, 10), article_context())
    assert state.kind == CaveatKind.NOT_IN_HOPPER
    assert "20 leads loaded" in caveat_text(state)


def test_state_of_lead_on_undialled_list() -> None:
    state = lead_state(make_lead(10, 10), DialContext(LIST_NAME))
    assert state.kind == CaveatKind.NOT_DIALLED
    assert f"*{LIST_NAME}*" in caveat_text(state)
    assert "It is called once a campaign dials this list." in caveat_text(state)


def test_state_of_lead_with_final_status() -> None:
    state = lead_state(make_lead(40, 40, "not_interested"), article_context())
    assert state.kind == CaveatKind.FINAL_STATUS
    assert "`not_interested`" in caveat_text(state)


def test_state_with_unreadable_hopper() -> None:
    state = lead_state(make_lead(40, 40), article_context(hopper=None, hopper_error="no answer in time"))
    assert state.kind == CaveatKind.HOPPER_UNKNOWN
    assert "(no answer in time)" in caveat_text(state)
    assert "It may already be loaded." in caveat_text(state)


# --- kinds, warnings ------------------------------------------------------------------------------------------------


def test_no_effect_now_is_exactly_caveats_1_3_4_5() -> None:
    assert {
        CaveatKind.IN_HOPPER,
        CaveatKind.ORDER_IGNORES_RANK,
        CaveatKind.NOT_DIALLED,
        CaveatKind.FINAL_STATUS,
    } == NO_EFFECT_NOW


def test_warnings_are_no_effect_now_plus_delays_and_unknowns() -> None:
    assert {
        CaveatKind.NEXT_BATCH,
        CaveatKind.NEW_LEAD_AFTER_BATCH,
        CaveatKind.HOPPER_UNKNOWN,
        CaveatKind.AWAITS_RECYCLING,
        CaveatKind.CAMPAIGN_UNKNOWN,
        CaveatKind.STILL_LOADED,
        CaveatKind.REMOVAL_UNKNOWN,
        CaveatKind.DUPLICATE_NUMBER,
        CaveatKind.SIMILAR_UID,
    } == WARNINGS - NO_EFFECT_NOW
    assert CaveatKind.NEXT_REFILL not in WARNINGS
    assert CaveatKind.NOT_IN_HOPPER not in WARNINGS
    assert CaveatKind.NOT_LOADED not in WARNINGS


def test_next_refill_is_not_a_warning_and_next_batch_is() -> None:
    refill = change_caveats("rank", make_lead(10, 10), make_lead(10, 20), article_context())[0]
    batch = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context())[0]
    assert (refill.kind, refill.is_warning) == (CaveatKind.NEXT_REFILL, False)
    assert (batch.kind, batch.is_warning) == (CaveatKind.NEXT_BATCH, True)


# --- DialContext helpers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("campaign", "dialling"),
    [
        (None, False),
        (make_campaign(active=None), False),
        (make_campaign(active=False), False),
        (make_campaign(active=True), True),
    ],
)
def test_dialling_needs_an_active_campaign(campaign: Campaign | None, dialling: bool) -> None:
    assert DialContext(LIST_NAME, campaign).dialling is dialling


@pytest.mark.parametrize(
    ("order", "list_order", "ranks_matter"),
    [
        (None, "UP", False),
        ("", "UP", False),
        ("UP", "UP", False),
        ("DOWN", "DOWN", False),
        ("UP RANK", "UP RANK", True),
        ("DOWN RANK", "DOWN RANK", True),
        ("RANDOM", "RANDOM", False),
    ],
)
def test_list_order_and_whether_ranks_matter(order: str | None, list_order: str, ranks_matter: bool) -> None:
    context = DialContext(LIST_NAME, make_campaign(order))
    assert context.list_order == list_order
    assert context.ranks_matter is ranks_matter


def test_list_order_without_campaign_is_up() -> None:
    assert DialContext(LIST_NAME).list_order == "UP"


@pytest.mark.parametrize(
    ("hopper", "lead", "position"),
    [
        (ARTICLE_HOPPER, lead_id(50), 1),
        (ARTICLE_HOPPER, lead_id(40), 11),
        (ARTICLE_HOPPER, lead_id(31), 20),
        (ARTICLE_HOPPER, lead_id(30), None),
        (None, lead_id(40), None),
        ((), lead_id(40), None),
    ],
)
def test_hopper_position(hopper: tuple[HopperEntry, ...] | None, lead: str, position: int | None) -> None:
    assert DialContext(LIST_NAME, make_campaign(), hopper).hopper_position(lead) == position


def test_hopper_position_matches_a_dashed_uuid_spelling() -> None:
    hopper = (HopperEntry(id="ee369f62-c0c0-4c89-93e4-b3921c506c45", order="4"),)
    assert DialContext(LIST_NAME, make_campaign(), hopper).hopper_position("ee369f62c0c04c8993e4b3921c506c45") == 4


@pytest.mark.parametrize(
    ("order", "hopper", "last", "rank", "ahead"),
    [
        ("UP RANK", ARTICLE_HOPPER, 31, 100, True),
        ("UP RANK", ARTICLE_HOPPER, 31, 32, True),
        ("UP RANK", ARTICLE_HOPPER, 31, 31, False),
        ("UP RANK", ARTICLE_HOPPER, 31, 10, False),
        ("DOWN RANK", DOWN_HOPPER, 20, 19, True),
        ("DOWN RANK", DOWN_HOPPER, 20, 20, False),
        ("DOWN RANK", DOWN_HOPPER, 20, 100, False),
        ("UP RANK", ARTICLE_HOPPER, 31, None, False),
        ("UP RANK", ARTICLE_HOPPER, None, 100, False),
        ("UP RANK", None, 31, 100, False),
        ("UP RANK", (), 31, 100, False),
        ("UP", ARTICLE_HOPPER, 31, 100, False),
        ("DOWN", ARTICLE_HOPPER, 31, -100, False),
        (None, ARTICLE_HOPPER, 31, 100, False),
    ],
)
def test_is_ahead_of_hopper(
    order: str | None, hopper: tuple[HopperEntry, ...] | None, last: int | None, rank: int | None, ahead: bool
) -> None:
    context = DialContext(LIST_NAME, make_campaign(order), hopper, None, last)
    assert context.is_ahead_of_hopper(rank) is ahead


@pytest.mark.parametrize(
    ("action", "context", "lead", "new_rank", "needed"),
    [
        ("rank", article_context(last_hopper_rank=None), lead_id(10), 100, True),
        ("set", article_context("DOWN RANK", last_hopper_rank=None), lead_id(10), 100, True),
        ("add", article_context(last_hopper_rank=None), None, 100, True),
        ("rank", article_context(last_hopper_rank=None), lead_id(40), 100, False),  # in the hopper: not needed
        ("show", article_context(last_hopper_rank=None), lead_id(10), 100, False),
        ("rank", article_context(last_hopper_rank=None), lead_id(10), None, False),
        ("rank", article_context("UP", last_hopper_rank=None), lead_id(10), 100, False),
        ("rank", article_context(None, last_hopper_rank=None), lead_id(10), 100, False),
        ("rank", article_context(active=False, last_hopper_rank=None), lead_id(10), 100, False),
        ("rank", DialContext(LIST_NAME), lead_id(10), 100, False),
        ("rank", article_context(hopper=None, last_hopper_rank=None), lead_id(10), 100, False),
        ("rank", article_context(hopper=(), last_hopper_rank=None), lead_id(10), 100, False),
    ],
    ids=[
        "rank-up-rank",
        "set-down-rank",
        "add",
        "in-hopper",
        "show",
        "no-new-rank",
        "up-order",
        "no-order",
        "inactive",
        "no-campaign",
        "hopper-unknown",
        "hopper-empty",
    ],
)
def test_needs_last_hopper_rank(
    action: str, context: DialContext, lead: str | None, new_rank: int | None, needed: bool
) -> None:
    assert needs_last_hopper_rank(action, context, lead, new_rank) is needed  # type: ignore[arg-type]


# --- campaign_line --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "line"),
    [
        (DialContext(LIST_NAME), f"List *{LIST_NAME}* · no campaign dials it"),
        (
            article_context(),
            f"Campaign *{CAMPAIGN_NAME}* (active) · list order UP RANK (highest rank first) · hopper 20 leads",
        ),
        (
            article_context("DOWN RANK", hopper=make_hopper([1])),
            f"Campaign *{CAMPAIGN_NAME}* (active) · list order DOWN RANK (lowest rank first) · hopper 1 lead",
        ),
        (
            article_context(None, hopper=()),
            f"Campaign *{CAMPAIGN_NAME}* (active) · list order UP (last loaded first) · hopper 0 leads",
        ),
        (
            article_context("DOWN", active=False),
            f"Campaign *{CAMPAIGN_NAME}* (not active) · list order DOWN (first loaded first)",
        ),
        (
            article_context("UP", hopper=None, hopper_error="HTTP 503"),
            f"Campaign *{CAMPAIGN_NAME}* (active) · list order UP (last loaded first)",
        ),
        (article_context("RANDOM", hopper=None), f"Campaign *{CAMPAIGN_NAME}* (active) · list order RANDOM"),
    ],
    ids=["no-campaign", "up-rank", "down-rank-one", "default-order", "inactive", "hopper-unknown", "unknown-order"],
)
def test_campaign_line(context: DialContext, line: str) -> None:
    assert campaign_line(context) == line


def test_campaign_line_escapes_names() -> None:
    assert campaign_line(DialContext("<b>&")) == "List *&lt;b&gt;&amp;* · no campaign dials it"
    line = campaign_line(DialContext(LIST_NAME, make_campaign(name="<@U123>")))
    assert line.startswith("Campaign *&lt;@U123&gt;* (active)")


@pytest.mark.parametrize("status", ["no_answer", "busy", "answering_machine"])
def test_a_lead_already_called_is_not_promised_the_next_batch(status: str) -> None:
    """Neither final nor dialable: whether it comes back is up to the campaign's recycling rules."""
    hopper = tuple(HopperEntry(id=f"{n:032x}", order=str(n)) for n in range(1, 21))
    context = DialContext("Spring leads", make_campaign(), hopper, last_hopper_rank=31)
    before = Lead(id="a" * 32, uid="lead-50", rank=50, status=status)
    after = before.model_copy(update={"rank": 100})
    caveats = change_caveats("rank", before, after, context)
    assert [caveat.kind for caveat in caveats] == [CaveatKind.AWAITS_RECYCLING]
    assert f"`{status}`" in caveat_text(caveats[0])
    assert "recycling rules" in caveat_text(caveats[0])
    assert lead_state(after, context).kind == CaveatKind.AWAITS_RECYCLING


# --- what an already-loaded lead still uses, and what is unknown ---------------------------------------------------


def test_in_hopper_number_change_says_the_old_number_is_still_called() -> None:
    before = make_lead(40, 40)
    after = before.model_copy(update={"number": "+4915199999990"})
    (caveat,) = change_caveats("set", before, after, article_context())
    assert caveat.kind == CaveatKind.IN_HOPPER
    assert "still called on the old number 4916098119998" in caveat_text(caveat)
    assert "keeps its place" not in caveat_text(caveat)


def test_in_hopper_data_change_says_the_agent_sees_the_old_data() -> None:
    before = make_lead(40, 40, city="Berlin")
    after = make_lead(40, 40, city="Hamburg")
    (caveat,) = change_caveats("set", before, after, article_context())
    assert "the agent still sees the old data" in caveat_text(caveat)


def test_unreadable_campaign_is_unknown_not_not_dialled() -> None:
    context = DialContext("Spring leads", campaign_error="HTTP 500")
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 45), context)
    assert kinds(caveats) == (CaveatKind.CAMPAIGN_UNKNOWN,)
    assert "(HTTP 500)" in caveat_text(caveats[0])
    assert lead_state(make_lead(40, 40), context).kind == CaveatKind.CAMPAIGN_UNKNOWN


def test_unreadable_hopper_keeps_the_list_order_caveat() -> None:
    context = article_context("UP", hopper=None, hopper_error="HTTP 503")
    caveats = change_caveats("rank", make_lead(1, 1), make_lead(1, 9), context)
    assert kinds(caveats) == (CaveatKind.ORDER_IGNORES_RANK, CaveatKind.HOPPER_UNKNOWN)


def test_unreadable_hopper_on_add_speaks_of_the_new_lead() -> None:
    context = article_context(hopper=None, hopper_error="HTTP 503")
    (caveat,) = change_caveats("add", None, make_lead(100, 5), context)
    assert "cannot say when the new lead is loaded" in caveat_text(caveat)
    assert "already loaded" not in caveat_text(caveat)


def test_next_batch_does_not_promise_first_place_over_other_waiting_leads() -> None:
    (caveat,) = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context())
    assert "first of the next batch" in caveat_text(caveat)
    assert "unless another waiting lead ranks higher" in caveat_text(caveat)


def test_the_rules_module_imports_nothing_of_slack_or_rendering() -> None:
    """The dialer's rules return facts; mrkdwn and Block Kit live in caveat_text and blocks."""
    import ast
    from pathlib import Path

    import commands.caveats

    tree = ast.parse(Path(commands.caveats.__file__).read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported, "no import found: the scan is broken"
    assert not {name for name in imported if name.startswith(("slack", "commands.blocks", "commands.caveat_text"))}
    assert not {name for name in imported if name in {"blocks", "caveat_text"}}


# --- what was compared, and the verdict line -------------------------------------------------------------------------


def test_ahead_of_the_hopper_names_the_only_rank_it_was_compared_with() -> None:
    """Only the hopper's last lead is read, so the sentence says that, not "ahead of the 20 leads"."""
    (moved,) = change_caveats("rank", make_lead(10, 10), make_lead(10, 100), article_context())
    (added,) = change_caveats("add", None, make_lead(99, 500), article_context())
    assert moved.bound_rank == added.bound_rank == 31
    assert "before the hopper's last lead (rank 31)" in caveat_text(moved)
    assert "before the hopper's last lead (rank 31)" in caveat_text(added)
    assert "ahead of the 20" not in caveat_text(moved) + caveat_text(added)


@pytest.mark.parametrize(
    ("action", "before", "after", "context", "expected"),
    [
        ("rank", (40, 40), (40, 100), {}, "Applied, but not dialled now: already in the hopper (11 of 20)"),
        ("rank", (10, 10), (10, 100), {}, "Applied: heads the next batch, not the current one"),
        ("rank", (10, 10), (10, 12), {}, "Applied: dialled with the new values from the next refill"),
        ("rank", (10, 10), (10, 12), {"order": "UP"}, "Applied, but rank changes nothing: list order UP"),
        ("rank", (10, 10), (10, 12), {"active": False}, "Applied, but not dialled now: no active campaign dials"),
        ("add", None, (99, 5), {}, "Added: loaded at a later refill"),
        ("add", None, (99, 500), {}, "Added: called after the current batch"),
    ],
)
def test_the_verdict_says_what_happened_then_what_it_means(
    action: str, before: tuple[int, int] | None, after: tuple[int, int], context: dict, expected: str
) -> None:
    from commands.caveat_text import verdict

    order = context.pop("order", "UP RANK")
    caveats = change_caveats(
        action,  # type: ignore[arg-type]
        make_lead(*before) if before else None,
        make_lead(*after),
        article_context(order, **context),
    )
    assert verdict(caveats[0], "Added" if action == "add" else "Applied").startswith(expected)


def test_a_shown_lead_gets_its_state_as_the_verdict() -> None:
    from commands.caveat_text import verdict

    assert verdict(lead_state(make_lead(40, 40), article_context()), "Applied") == (
        "In the hopper (11 of 20): dialled in this batch"
    )
    assert verdict(lead_state(make_lead(10, 10), article_context()), "Applied") == (
        "Waiting: not in the hopper (20 loaded)"
    )


# --- hopper entries without an id (the spec makes every hopper field optional) ---------------------------------------

OTHER_LIST_ID = "0" * 31 + "f"


def dialling_the_list(order: str = "UP RANK") -> Campaign:
    """The campaign as babelforce describes it: it names the list it dials, the `listId` its hopper entries carry."""
    return Campaign(id=CAMPAIGN_ID, name=CAMPAIGN_NAME, active=True, list_order=order, lead_list={"id": LIST_ID})


def without_ids(entries: tuple[HopperEntry, ...], *, drop: tuple[str, ...] = ("id",)) -> tuple[HopperEntry, ...]:
    return tuple(HopperEntry.model_validate(entry.model_dump(exclude=set(drop))) for entry in entries)


def test_entries_without_an_id_are_matched_by_list_id_and_uid() -> None:
    context = DialContext(LIST_NAME, dialling_the_list(), without_ids(ARTICLE_HOPPER), last_hopper_rank=31)
    assert context.hopper_position(lead_id(40), ("lead-40",)) == 11
    assert context.hopper_position(lead_id(40)) is None  # no uid to match by
    assert context.unnamed_entries == 0
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 200), context)
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert "position 11 of 20" in caveat_text(caveats[0])
    assert lead_state(make_lead(10, 10), context).kind == CaveatKind.NOT_IN_HOPPER


def test_a_uid_matches_only_within_the_campaigns_list() -> None:
    """A uid is unique within its list only: the same uid in another list is another lead."""
    hopper = (HopperEntry(uid="lead-40", list_id=OTHER_LIST_ID, order="1"),)
    context = DialContext(LIST_NAME, dialling_the_list(), hopper)
    assert context.hopper_position(lead_id(40), ("lead-40",)) is None
    no_list_named = DialContext(LIST_NAME, make_campaign(), without_ids(ARTICLE_HOPPER))  # the campaign names no list
    assert no_list_named.hopper_position(lead_id(40), ("lead-40",)) is None


def test_an_entry_with_an_id_is_matched_by_its_id_only() -> None:
    hopper = (HopperEntry(id=lead_id(99), uid="lead-40", list_id=LIST_ID, order="1"),)
    context = DialContext(LIST_NAME, dialling_the_list(), hopper)
    assert context.hopper_position(lead_id(40), ("lead-40",)) is None
    assert context.hopper_position(lead_id(99)) == 1


def test_an_entry_keeps_the_uid_the_lead_had_when_loaded_so_a_renamed_lead_is_still_found() -> None:
    context = DialContext(LIST_NAME, dialling_the_list(), without_ids(ARTICLE_HOPPER))
    before, after = make_lead(40, 40), make_lead(40, 40).model_copy(update={"uid": "renamed-40"})
    caveats = change_caveats("set", before, after, context)
    assert kinds(caveats) == (CaveatKind.IN_HOPPER,)
    assert caveats[0].position == 11


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"uid": "lead-40"},  # no list id: a uid alone names no lead
        {"listId": LIST_ID},
        {"id": "", "uid": " ", "listId": LIST_ID},  # blank is nothing
    ],
)
def test_an_entry_naming_no_lead_is_skipped_but_keeps_its_place(entry: dict) -> None:
    unnamed = HopperEntry.model_validate({**entry, "order": "1"})
    assert not unnamed.identifies_a_lead
    hopper = (unnamed, *(e.model_copy(update={"order": e.order + 1 if e.order else None}) for e in ARTICLE_HOPPER))
    context = DialContext(LIST_NAME, dialling_the_list(), hopper, last_hopper_rank=31)
    assert context.unnamed_entries == 1
    assert context.hopper_position(lead_id(40), ("lead-40",)) == 12  # the unnamed entry still takes position 1
    caveats = change_caveats("rank", make_lead(40, 40), make_lead(40, 41), context)
    assert (kinds(caveats), caveats[0].position, caveats[0].hopper_size) == ((CaveatKind.IN_HOPPER,), 12, 21)


def test_a_lead_found_in_no_entry_while_some_name_no_lead_is_not_said_to_be_outside_the_hopper() -> None:
    """It may be one of the unnamed entries: "not in the hopper" would be a guess, so the hopper is unknown."""
    hopper = (*without_ids(ARTICLE_HOPPER[:18]), *without_ids(ARTICLE_HOPPER[18:], drop=("id", "uid")))
    context = DialContext(LIST_NAME, dialling_the_list(), hopper, last_hopper_rank=31)
    shown = lead_state(make_lead(31, 31), context)
    assert shown.kind == CaveatKind.HOPPER_UNKNOWN
    assert shown.reason == "2 of its 20 entries name no lead"
    assert "could not read the hopper of *Spring calls* (2 of its 20 entries name no lead)" in caveat_text(shown)
    changed = change_caveats("rank", make_lead(10, 10), make_lead(10, 11), context)
    assert kinds(changed) == (CaveatKind.HOPPER_UNKNOWN,)
    assert kinds(change_caveats("rank", make_lead(40, 40), make_lead(40, 41), context)) == (CaveatKind.IN_HOPPER,)
