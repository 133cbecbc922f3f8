"""Properties of the columnar standings: the next batch, the waiting count, a queue position and the top rank come
out the same as the plain per-lead reading (the code before the standings were columnar, kept here as the
reference), whether the standings were given as a list of leads or made from a lookup index of the same export."""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from babelforce.lookup import LeadIndex, LeadStanding, ListStandings
from babelforce.models import DIALABLE_STATUSES, RANK_MAX, RANK_MIN, Campaign, HopperEntry, Lead, ListOrder
from commands.caveats import Caveat, CaveatKind, DialContext, TopRefusal, top_blocked, top_rank
from commands.queue import loaded_ids, loaded_uids, next_batch, queue_position, waiting_count

SETTINGS = settings(deadline=None)
LIST_ID = "1" * 32
ORDERS = ["UP", "DOWN", "UP RANK", "DOWN RANK"]
STATUSES = ["pending", "new", "callback", "sale", "no_answer", None]


def lid(n: int) -> str:
    return f"{n:032x}"


# ---------------------------------------------------------------------- the reference: one step per lead


def reference_waiting(
    standings: ListStandings, hopper: Sequence[HopperEntry], leads: Sequence[LeadStanding] | None = None
) -> list[LeadStanding]:
    ids, uids = loaded_ids(hopper), loaded_uids(hopper, LIST_ID)
    return [
        lead
        for lead in (standings.leads if leads is None else leads)
        if (not standings.has_statuses or lead.status in DIALABLE_STATUSES)
        and lead.id not in ids
        and lead.uid not in uids
    ]


def reference_next_batch(
    standings: ListStandings, hopper: Sequence[HopperEntry], order: str, limit: int | None
) -> list[LeadStanding]:
    waiting = reference_waiting(standings, hopper)
    if order == ListOrder.UP:
        return waiting[::-1][:limit]
    if order == ListOrder.DOWN:
        return waiting[:limit]
    sign = -1 if order == ListOrder.UP_RANK else 1
    ranked = [lead for lead in waiting if lead.rank is not None]
    unranked = [lead for lead in waiting if lead.rank is None]

    def key(lead: LeadStanding) -> int:
        assert lead.rank is not None
        return sign * lead.rank

    head = sorted(ranked, key=key) if limit is None else heapq.nsmallest(limit, ranked, key=key)
    return (head + unranked)[:limit]


def reference_ahead(lead: Lead, context: DialContext, standings: ListStandings) -> int | None:
    """waiting_ahead of a dialable lead outside the hopper (None when not computable)."""
    assert context.hopper is not None
    order = context.list_order
    if context.ranks_matter and (not standings.has_ranks or lead.rank is None):
        return None
    others = [other for other in reference_waiting(standings, context.hopper) if other.id != lead.id]
    if context.ranks_matter:
        assert lead.rank is not None
        rank = lead.rank
        if order == ListOrder.UP_RANK:
            return sum(1 for other in others if other.rank is not None and other.rank > rank)
        return sum(1 for other in others if other.rank is not None and other.rank < rank)
    row = next((at for at, other in enumerate(standings.leads) if other.id == lead.id), None)
    if row is None:
        return 0 if order == ListOrder.UP else len(others)
    before = len(reference_waiting(standings, context.hopper, standings.leads[:row]))
    return len(others) - before if order == ListOrder.UP else before


def reference_top_rank(lead: Lead, context: DialContext, standings: ListStandings) -> Caveat | None:
    """The rival top_rank names (or the unranked count it refuses with), None when it refuses for another reason."""
    if top_blocked(context) is not None or not standings.has_ranks:
        return None
    loaded = {entry.id for entry in context.hopper} if context.hopper is not None else None
    rivals = [
        standing
        for standing in standings.leads
        if standing.id != lead.id
        and (not standings.has_statuses or standing.status in DIALABLE_STATUSES)
        and (loaded is None or standing.id not in loaded)
    ]
    unranked = sum(1 for standing in rivals if standing.rank is None)
    if unranked:
        return Caveat(CaveatKind.TOP_REFUSED, refusal=TopRefusal.RANKS_UNKNOWN, unranked=unranked)
    if not rivals:
        return Caveat(CaveatKind.ALREADY_TOP)
    up = context.list_order == ListOrder.UP_RANK
    ranks = [standing.rank for standing in rivals if standing.rank is not None]
    best = max(ranks) if up else min(ranks)
    rival = next(standing for standing in rivals if standing.rank == best)
    return Caveat(CaveatKind.TOP_RANK, others=(rival.uid or rival.id,), other_rank=best)


# ---------------------------------------------------------------------- random lists, hoppers, leads


@st.composite
def lists(draw: st.DrawFn) -> tuple[list[LeadStanding], bool, bool]:
    count = draw(st.integers(min_value=0, max_value=30))
    numbers = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count, unique=True))
    ranks = st.one_of(st.integers(-5, 5), st.integers(RANK_MIN, RANK_MAX), st.none())  # many ties
    leads = [
        LeadStanding(lid(n), f"lead-{draw(st.integers(1, 60))}", draw(ranks), draw(st.sampled_from(STATUSES)))
        for n in numbers
    ]
    return leads, draw(st.booleans()), draw(st.booleans())


@st.composite
def hoppers(draw: st.DrawFn) -> tuple[HopperEntry, ...]:
    entries = []
    for n, how in draw(st.lists(st.tuples(st.integers(1, 60), st.sampled_from(["id", "uid", "other list"])))):
        if how == "id":
            entries.append(HopperEntry(id=lid(n), uid=f"lead-{n}"))
        else:  # named by list id + uid only
            entries.append(HopperEntry(uid=f"lead-{n}", list_id=LIST_ID if how == "uid" else "2" * 32))
    return tuple(entries)


def exported(leads: Sequence[LeadStanding]) -> ListStandings:
    """The same leads made into standings through a lookup index of their CSV export."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("id", "uid", "number", "rank", "status"))
    for n, lead in enumerate(leads):
        writer.writerow(
            (lead.id, lead.uid, f"+49151{n:08d}", "" if lead.rank is None else lead.rank, lead.status or "")
        )
    return LeadIndex.from_csv(out.getvalue(), built_at=0).standings()


def context(order: str, hopper: tuple[HopperEntry, ...]) -> DialContext:
    campaign = Campaign.model_validate(
        {"id": "3" * 32, "name": "c", "active": True, "listOrder": order, "leadList": {"id": LIST_ID, "name": "l"}}
    )
    return DialContext("l", campaign, hopper)


@SETTINGS
@given(lists(), hoppers(), st.sampled_from(ORDERS), st.sampled_from([None, 0, 1, 3, 20]))
def test_the_next_batch_and_the_count_are_the_per_lead_readings(
    drawn: tuple[list[LeadStanding], bool, bool], hopper: tuple[HopperEntry, ...], order: str, limit: int | None
) -> None:
    leads, has_ranks, has_statuses = drawn
    for standings in (ListStandings(leads, has_ranks, has_statuses), exported(leads)):
        expected = reference_next_batch(standings, hopper, order, limit)
        assert next_batch(standings, hopper, order, LIST_ID, limit) == expected
        assert waiting_count(standings, hopper, LIST_ID) == len(reference_waiting(standings, hopper))


@SETTINGS
@given(lists(), hoppers(), st.sampled_from(ORDERS), st.integers(1, 60), st.one_of(st.integers(-6, 6), st.none()))
def test_a_queue_position_and_the_top_rank_are_the_per_lead_readings(
    drawn: tuple[list[LeadStanding], bool, bool],
    hopper: tuple[HopperEntry, ...],
    order: str,
    n: int,
    rank: int | None,
) -> None:
    leads, has_ranks, has_statuses = drawn
    lead = Lead.model_validate({"id": lid(n), "uid": f"lead-{n}", "rank": rank, "status": "pending"})
    dial = context(order, hopper)
    for standings in (ListStandings(leads, has_ranks, has_statuses), exported(leads)):
        queue = queue_position(lead, dial, standings)
        if queue.position is None:  # not in the hopper: waiting (the lead's own status is pending)
            assert queue.waiting_ahead == reference_ahead(lead, dial, standings)
        expected = reference_top_rank(lead, dial, standings)
        if expected is None or order not in ("UP RANK", "DOWN RANK"):
            continue
        choice = top_rank(lead, dial, standings)
        if expected.kind == CaveatKind.TOP_REFUSED:
            assert (choice.refusal, choice.unranked) == (TopRefusal.RANKS_UNKNOWN, expected.unranked)
        elif expected.kind == CaveatKind.ALREADY_TOP:
            assert choice.kind == CaveatKind.ALREADY_TOP and not choice.others
        else:
            assert (choice.others, choice.other_rank) == (expected.others, expected.other_rank)
