"""Where leads stand in line with the dialer, as facts: the next batch and one lead's queue position. Pure.

Worked out from one export of the list (`ListStandings`: every lead's rank and status), the hopper and the list
order, so it is only "about": the export may be a few minutes old and the dialer breaks rank ties by load order,
which the API does not show. Under UP / DOWN the order is the order leads were loaded into the list; leadbot reads
that from the export's row order (the sandbox exports rows in that order; babelforce's spec does not promise it),
so those figures are "about" too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from babelforce.lookup import LeadStanding, ListStandings
from babelforce.models import DIALABLE_STATUSES, FINAL_STATUSES, HopperEntry, Lead, ListOrder

from .caveat_text import escape
from .caveats import DialContext

#: What the export may be older than; said with every figure worked out from it.
ABOUT = "about"


class InLine(StrEnum):
    """Where a lead stands: loaded, waiting to be loaded, or why it is not in line at all."""

    IN_HOPPER = "in_hopper"
    WAITING = "waiting"  # dialable and not loaded; `ahead` counts the leads before it when computable
    RECYCLING = "recycling"  # called already (no_answer, busy …): back only when recycling rules say so
    FINAL = "final"  # a final outcome: never dialled again
    NOT_DIALLED = "not_dialled"  # no active campaign dials the list
    UNKNOWN = "unknown"  # the campaign or the hopper could not be read


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """One lead's place in line. `ahead` = `hopper_size` + `waiting_ahead` (None when not computable)."""

    where: InLine
    position: int | None = None
    hopper_size: int | None = None
    waiting_ahead: int | None = None
    status: str | None = None
    list_order: str | None = None
    rank_based: bool = True  # WAITING: waiting_ahead counts leads of a better rank (else: loaded before it)

    @property
    def ahead(self) -> int | None:
        if self.hopper_size is None or self.waiting_ahead is None:
            return None
        return self.hopper_size + self.waiting_ahead


def loaded_ids(hopper: Sequence[HopperEntry]) -> set[str]:
    return {entry.id for entry in hopper if entry.id is not None}


def loaded_uids(hopper: Sequence[HopperEntry], list_id: str | None) -> set[str]:
    """Uids of entries without an id (those name their lead by list id + uid)."""
    return {
        entry.uid
        for entry in hopper
        if entry.id is None and entry.uid is not None and (entry.list_id is None or entry.list_id == list_id)
    }


def _waiting(standings: ListStandings, hopper: Sequence[HopperEntry], list_id: str | None) -> bytearray:
    """One byte per lead of the standings, in export row order: 1 for a dialable lead not in the hopper (a missing
    status column: every lead not loaded). Columnar (`ListStandings.selection`): no step per lead in Python."""
    return standings.selection(DIALABLE_STATUSES, not_ids=loaded_ids(hopper), not_uids=loaded_uids(hopper, list_id))


def _first(chosen: bytearray, limit: int | None) -> list[int]:
    places: list[int] = []
    at = chosen.find(1)
    while at != -1 and (limit is None or len(places) < limit):
        places.append(at)
        at = chosen.find(1, at + 1)
    return places


def _last(chosen: bytearray, limit: int | None) -> list[int]:
    places: list[int] = []
    at = chosen.rfind(1)
    while at != -1 and (limit is None or len(places) < limit):
        places.append(at)
        at = chosen.rfind(1, 0, at)
    return places


def next_batch(
    standings: ListStandings,
    hopper: Sequence[HopperEntry],
    list_order: str,
    list_id: str | None = None,
    limit: int | None = None,
) -> list[LeadStanding]:
    """The waiting leads in the order the dialer would load them next: UP RANK highest rank first, DOWN RANK
    lowest first (leads without a rank last; ties by export row), UP the last row first, DOWN the first row first.
    `limit`: only the first that many (found without sorting the whole list)."""
    waiting = _waiting(standings, hopper, list_id)
    if list_order == ListOrder.UP:
        places = _last(waiting, limit)
    elif list_order == ListOrder.DOWN:
        places = _first(waiting, limit)
    else:
        places = standings.by_rank(waiting, limit, highest=list_order == ListOrder.UP_RANK)
        if limit is None or len(places) < limit:
            places += standings.unranked(waiting, None if limit is None else limit - len(places))
    return [standings.standing(place) for place in places]


def waiting_count(standings: ListStandings, hopper: Sequence[HopperEntry], list_id: str | None = None) -> int:
    """How many dialable leads wait outside the hopper (the next batch's whole length)."""
    return _waiting(standings, hopper, list_id).count(1)


def queue_position(lead: Lead, context: DialContext, standings: ListStandings | None) -> QueuePosition:
    """Where `lead` stands in line, from the context read with it and the list's standings (None: not read).

    The lead is placed by its own values as given (its rank and status now, e.g. as a write just left them): its
    row in the standings, which may predate the write, only gives its load order (UP / DOWN), and a lead the
    standings do not have yet was loaded after them all. So a write's reply may pass standings read before it."""
    order = context.list_order
    if context.campaign_error is not None:
        return QueuePosition(InLine.UNKNOWN, list_order=order)
    if not context.dialling:
        return QueuePosition(InLine.NOT_DIALLED, list_order=order)
    if lead.status in FINAL_STATUSES:
        return QueuePosition(InLine.FINAL, status=lead.status, list_order=order)
    if context.hopper is None:
        return QueuePosition(InLine.UNKNOWN, list_order=order)
    size = len(context.hopper)
    position = context.hopper_position(lead.id, (lead.uid,))
    if position is not None:
        return QueuePosition(InLine.IN_HOPPER, position=position, hopper_size=size, list_order=order)
    if lead.status is not None and lead.status not in DIALABLE_STATUSES:
        return QueuePosition(InLine.RECYCLING, status=lead.status, hopper_size=size, list_order=order)
    rank_based = context.ranks_matter
    if standings is None or (rank_based and (not standings.has_ranks or lead.rank is None)):
        return QueuePosition(InLine.WAITING, hopper_size=size, list_order=order, rank_based=rank_based)
    others = _waiting(standings, context.hopper, context.list_id)  # then without the lead itself
    own = standings.places_of(ids=(lead.id,))
    for place in own:
        others[place] = 0
    if rank_based:
        assert lead.rank is not None
        better = standings.count_ranked(others, lead.rank, higher=order == ListOrder.UP_RANK)
        return QueuePosition(InLine.WAITING, hopper_size=size, waiting_ahead=better, list_order=order)
    waiting = others.count(1)
    if not own:  # loaded after every lead the standings know: first under UP, last under DOWN
        ahead = 0 if order == ListOrder.UP else waiting
    else:
        loaded_before = others.count(1, 0, own[0])
        ahead = waiting - loaded_before if order == ListOrder.UP else loaded_before
    return QueuePosition(InLine.WAITING, hopper_size=size, waiting_ahead=ahead, list_order=order, rank_based=False)


def queue_text(queue: QueuePosition) -> str:
    """One line for a lead card (mrkdwn): where it stands in line, labelled "about" where worked out."""
    match queue.where:
        case InLine.IN_HOPPER:
            return f"Queue: in the hopper, position {queue.position} of {queue.hopper_size}."
        case InLine.WAITING:
            ahead = queue.ahead
            if ahead is None:
                if queue.rank_based:
                    return f"Queue: waiting; {queue.hopper_size} in the hopper are ahead of it, the rest is not known."
                return f"Queue: waiting; {queue.hopper_size} in the hopper ahead of it."
            why = "with higher rank" if queue.list_order == ListOrder.UP_RANK else "with lower rank"
            if not queue.rank_based:
                side = "after" if queue.list_order == ListOrder.UP else "before"
                why = f"loaded {side} it (list order {queue.list_order})"
            return (
                f"Queue: waiting: {ABOUT} {ahead} leads ahead of it ({queue.hopper_size} in the hopper, "
                f"{queue.waiting_ahead} waiting {why})."
            )
        case InLine.RECYCLING:
            return f"Queue: not in line: status {escape(queue.status or '')} waits for the campaign's recycling rules."
        case InLine.FINAL:
            return f"Queue: not in line: status {escape(queue.status or '')} is final; it is never dialled again."
        case InLine.NOT_DIALLED:
            return "Queue: not in line: no active campaign dials this list."
        case InLine.UNKNOWN:
            return "Queue: not known: the campaign or its hopper could not be read."
