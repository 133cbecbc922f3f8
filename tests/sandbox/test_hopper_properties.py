"""Properties of the pure hopper functions, over arbitrary lists of leads."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sandbox.hopper import DIALABLE_STATUSES, LIST_ORDERS, entry_for, is_dialable, order_key, refill


@dataclass(slots=True)
class FakeLead:
    id: str
    uid: str
    list_id: str
    number: str
    rank: int
    seq: int
    status: str
    call_count: int
    called_since_reset: bool


STATUSES = [*sorted(DIALABLE_STATUSES), "sale", "do_not_call", "not_interested", "no_answer"]


@st.composite
def lead_lists(draw: st.DrawFn) -> list[FakeLead]:
    count = draw(st.integers(min_value=0, max_value=40))
    ranks = draw(st.lists(st.integers(-3, 3), min_size=count, max_size=count))  # few values: many ties
    statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=count, max_size=count))
    called = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    return [
        FakeLead(f"id{n}", f"u{n}", "list", "+491510000000", ranks[n], n + 1, statuses[n], 0, called[n])
        for n in range(count)
    ]


def expected_order(leads: list[FakeLead], list_order: str) -> list[str]:
    """The reference ordering, written out without sort keys."""
    dialable = [lead for lead in leads if lead.status in DIALABLE_STATUSES and not lead.called_since_reset]
    if list_order == "UP":
        ordered = list(reversed(dialable))
    elif list_order == "DOWN":
        ordered = dialable
    else:
        ranks = sorted({lead.rank for lead in dialable}, reverse=list_order == "UP RANK")
        ordered = [lead for rank in ranks for lead in dialable if lead.rank == rank]
    return [lead.id for lead in ordered]


@settings(deadline=None)
@given(leads=lead_lists(), list_order=st.sampled_from(LIST_ORDERS), size=st.integers(1, 25))
def test_refill_of_an_empty_hopper_takes_the_best_dialable_leads_in_order(leads, list_order, size) -> None:
    hopper = refill([], leads, list_order, size)
    assert [entry.lead_id for entry in hopper] == expected_order(leads, list_order)[:size]


@settings(deadline=None)
@given(leads=lead_lists(), list_order=st.sampled_from(LIST_ORDERS), size=st.integers(1, 25), data=st.data())
def test_refill_keeps_loaded_entries_and_only_appends(leads, list_order, size, data) -> None:
    dialable = [lead for lead in leads if is_dialable(lead)]
    preloaded = data.draw(
        st.lists(st.sampled_from(dialable), unique_by=lambda lead: lead.id, max_size=size) if dialable else st.just([])
    )
    hopper = [entry_for(lead) for lead in preloaded]
    refilled = refill(hopper, leads, list_order, size)
    assert refilled[: len(hopper)] == hopper
    ids = [entry.lead_id for entry in refilled]
    assert len(ids) == len(set(ids))
    assert len(refilled) == min(size, len(dialable)) or len(hopper) >= size
    waiting = [lead_id for lead_id in expected_order(leads, list_order) if lead_id not in {e.lead_id for e in hopper}]
    assert ids[len(hopper) :] == waiting[: max(0, size - len(hopper))]


@given(leads=lead_lists(), list_order=st.sampled_from(LIST_ORDERS))
def test_a_full_hopper_is_returned_unchanged(leads, list_order) -> None:
    full = refill([], leads, list_order, 3)
    assume(len(full) == 3)  # not a silent pass: hypothesis fails if this is never met
    assert (
        refill(full, [*leads, FakeLead("new", "n", "list", "1234567", 99, 999, "pending", 0, False)], list_order, 3)
        is full
    )


def test_order_keys_follow_the_article() -> None:
    early = FakeLead("a", "a", "l", "1234567", 10, 1, "pending", 0, False)
    late = FakeLead("b", "b", "l", "1234567", 5, 2, "pending", 0, False)
    assert min([early, late], key=order_key("UP")) is late
    assert min([early, late], key=order_key("DOWN")) is early
    assert min([early, late], key=order_key("UP RANK")) is early
    assert min([early, late], key=order_key("DOWN RANK")) is late
