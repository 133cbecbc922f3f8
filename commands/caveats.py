"""Hopper caveats: will a change reach the dialer now, and if not, why and when? The dialer's rules, as facts.

Pure functions of the campaign, the hopper as read just before the change, and the lead before and after it. They
return facts (a kind plus its numbers: position, hopper size, list order, status, ...); commands/caveat_text.py turns
them into sentences. Nothing here knows of Slack.
The rules come from babelforce's article on updating leads (see DOMAIN.md):
- a lead already in the hopper ignores updates for this dial;
- a lead moved ahead of the hopper's leads is not added to the current batch: it heads the next one;
- a new lead is never compared with the hopper's leads;
- rank only orders dialling under the `UP RANK` / `DOWN RANK` list orders;
- leads with a final outcome are never loaded again, and a list no active campaign dials is not loaded at all.
Two more facts are about the list's own data, not the dialer: a number another lead of the list already has, and a
uid that differs from another lead's only by case or spaces. And `/lead rank … top` is worked out here: the rank
that puts a lead at the head of the next batch, or why there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from babelforce.lookup import ListStandings
from babelforce.models import DIALABLE_STATUSES, RANK_MAX, RANK_MIN, Campaign, HopperEntry, Lead, ListOrder

Action = Literal["add", "rank", "set", "show", "undo", "remove", "undo_remove"]

#: What babelforce does when a campaign has no list order set (DOMAIN.md: UP is the default).
DEFAULT_LIST_ORDER = ListOrder.UP

ORDER_MEANING: dict[str, str] = {
    ListOrder.UP: "last loaded first",
    ListOrder.DOWN: "first loaded first",
    ListOrder.UP_RANK: "highest rank first",
    ListOrder.DOWN_RANK: "lowest rank first",
}


class CaveatKind(StrEnum):
    IN_HOPPER = "in_hopper"  # 1: already loaded, the change is ignored for this dial
    NEXT_BATCH = "next_batch"  # 2: ahead of the hopper's leads, but only heads the next batch
    ORDER_IGNORES_RANK = "order_ignores_rank"  # 3: UP / DOWN list order, rank changes nothing
    NOT_DIALLED = "not_dialled"  # 4: no active campaign dials the list
    FINAL_STATUS = "final_status"  # 5: a final outcome, never dialled again
    NEW_LEAD_AFTER_BATCH = "new_lead_after_batch"  # 6: a new lead is not compared with the hopper
    HOPPER_UNKNOWN = "hopper_unknown"  # the hopper could not be read
    NEXT_REFILL = "next_refill"  # none of the above: the change counts from the next refill
    NOT_IN_HOPPER = "not_in_hopper"  # show only: waiting to be loaded
    AWAITS_RECYCLING = "awaits_recycling"  # already called (e.g. no_answer): back only if recycling rules say so
    LOADED_NOW = "loaded_now"  # add: the hopper was short, the new lead went straight in
    CAMPAIGN_UNKNOWN = "campaign_unknown"  # the campaign dialling the list could not be read
    # remove: babelforce's API cannot take a lead out of a loaded batch (DOMAIN.md), so only the hopper can still
    # call a lead once it is deleted
    STILL_LOADED = "still_loaded"  # in the hopper: that batch may still call it; no later batch will
    NOT_LOADED = "not_loaded"  # in no hopper (or no active campaign dials the list): no batch will call it
    REMOVAL_UNKNOWN = "removal_unknown"  # the hopper (or the campaign) could not be read
    DUPLICATE_NUMBER = "duplicate_number"  # another lead of the list has this number (add, or set of a number)
    SIMILAR_UID = "similar_uid"  # another lead's uid differs from this one only by case or spaces
    TOP_RANK = "top_rank"  # rank … top: the rank chosen, and the waiting lead it goes one beyond
    ALREADY_TOP = "already_top"  # rank … top: its rank already beats every waiting lead; nothing changes
    TOP_REFUSED = "top_refused"  # rank … top: no rank can head the next batch (see TopRefusal)


#: Caveats after which the change does nothing for dialling now (the ones worth an "apply anyway?").
NO_EFFECT_NOW = frozenset(
    {CaveatKind.IN_HOPPER, CaveatKind.ORDER_IGNORES_RANK, CaveatKind.NOT_DIALLED, CaveatKind.FINAL_STATUS}
)
#: Facts about the list's own data that make leadbot ask "apply anyway?" before writing, whatever the dialer does.
ASK_FIRST = frozenset({CaveatKind.DUPLICATE_NUMBER, CaveatKind.SIMILAR_UID})
#: Caveats that tell of a delay, an unknown or a doubt; the rest are plain good news.
WARNINGS = (
    NO_EFFECT_NOW
    | ASK_FIRST
    | {
        CaveatKind.NEXT_BATCH,
        CaveatKind.NEW_LEAD_AFTER_BATCH,
        CaveatKind.HOPPER_UNKNOWN,
        CaveatKind.AWAITS_RECYCLING,
        CaveatKind.CAMPAIGN_UNKNOWN,
        CaveatKind.STILL_LOADED,
        CaveatKind.REMOVAL_UNKNOWN,
    }
)


class Subject(StrEnum):
    """What a caveat speaks of: a change to a lead, a new lead, or a lead as it stands (/lead show)."""

    CHANGE = "change"
    NEW_LEAD = "new_lead"
    SHOWN = "shown"
    REMOVED = "removed"  # a lead just deleted, the hopper read again after the delete


class TopBasis(StrEnum):
    """Which leads `top` compared the lead with: the waiting ones, or more when the export or the hopper could not
    say which those are (then the rank chosen is higher than needed, never too low)."""

    WAITING = "waiting"  # dialable and not in the hopper
    NOT_IN_HOPPER = "not_in_hopper"  # the export has no statuses: every lead not in the hopper
    DIALABLE = "dialable"  # the hopper could not be read: every dialable lead, loaded or not
    ALL = "all"  # neither could be told: every lead of the list


class TopRefusal(StrEnum):
    """Why `top` finds no rank (TOP_REFUSED)."""

    ORDER_IGNORES_RANK = "order_ignores_rank"  # UP / DOWN: rank does not order dialling
    NOT_DIALLED = "not_dialled"  # no active campaign dials the list: there is no next batch
    CAMPAIGN_UNKNOWN = "campaign_unknown"  # the list order could not be read
    AT_LIMIT = "at_limit"  # one beyond the leading waiting lead is past -32768 … 32767
    RANKS_UNKNOWN = "ranks_unknown"  # the export gives no rank (column missing, or leads without one)


class Kept(StrEnum):
    """What a dial already loaded still uses after a change of the lead (IN_HOPPER)."""

    PLACE = "place"
    OLD_NUMBER = "old_number"
    OLD_UID = "old_uid"
    OLD_DATA = "old_data"


@dataclass(frozen=True, slots=True)
class Caveat:
    """One fact about the dialer and a lead: its kind, and the figures that go with it (None: not part of it)."""

    kind: CaveatKind
    subject: Subject = Subject.CHANGE
    position: int | None = None  # in the hopper, 1-based
    hopper_size: int | None = None
    rank: int | None = None
    bound_rank: int | None = None  # the rank of the hopper's last lead: what a rank "ahead of the hopper" beat
    status: str | None = None
    list_name: str | None = None
    campaign_name: str | None = None
    list_order: str | None = None
    reason: str | None = None  # why the campaign or the hopper could not be read
    kept: tuple[Kept, ...] = ()  # IN_HOPPER after a change: what this dial still uses
    old_number: str | None = None
    old_uid: str | None = None
    uid: str | None = None  # SIMILAR_UID: the uid being written
    number: str | None = None  # DUPLICATE_NUMBER: the number being written
    others: tuple[str, ...] = ()  # the other leads it is about (their uids): same number, similar uid, top's rival
    other_rank: int | None = None  # top: the rank of the lead named in `others`
    basis: TopBasis | None = None  # top: which leads it was compared with
    refusal: TopRefusal | None = None  # TOP_REFUSED: why
    unranked: int = 0  # TOP_REFUSED (RANKS_UNKNOWN): waiting leads the export gives no rank for

    @property
    def is_warning(self) -> bool:
        return self.kind in WARNINGS


@dataclass(frozen=True, slots=True)
class DialContext:
    """What the dialer is doing with a list, read just before a change (for an add: just after it).

    `hopper` is None when it could not be read (`hopper_error` says why) or when no active campaign dials the
    list; `campaign_error` says why the campaign itself could not be read (then nothing is known).
    `last_hopper_rank` is the current rank of the lead at the hopper's last position (None when not read):
    under a RANK order that lead bounds the batch, so a rank beyond it is "ahead of the hopper".
    """

    list_name: str
    campaign: Campaign | None = None
    hopper: tuple[HopperEntry, ...] | None = None
    hopper_error: str | None = None
    last_hopper_rank: int | None = None
    campaign_error: str | None = None

    @property
    def dialling(self) -> bool:
        return self.campaign is not None and bool(self.campaign.active)

    @property
    def list_order(self) -> str:
        order = self.campaign.list_order if self.campaign else None
        return order or DEFAULT_LIST_ORDER

    @property
    def ranks_matter(self) -> bool:
        return self.list_order in (ListOrder.UP_RANK, ListOrder.DOWN_RANK)

    @property
    def list_id(self) -> str | None:
        """The list the campaign dials: the `listId` its hopper entries carry."""
        lead_list = self.campaign.lead_list if self.campaign is not None else None
        return lead_list.id if lead_list is not None else None

    @property
    def unnamed_entries(self) -> int:
        """Hopper entries that name no lead (no id, no list id + uid): a lead not found may be one of them."""
        return sum(not entry.identifies_a_lead for entry in self.hopper or ())

    def hopper_position(self, lead_id: str, uids: Iterable[str | None] = ()) -> int | None:
        """1-based position of the lead in the hopper, or None when it is not loaded (or unknown). An entry is the
        lead by its id, else by this list's id + one of `uids` (the lead's uids now and before the change)."""
        uids = tuple(uids)
        for index, entry in enumerate(self.hopper or ()):
            if entry.is_lead(lead_id, self.list_id, uids):
                return entry.order if entry.order is not None else index + 1
        return None

    def is_ahead_of_hopper(self, rank: int | None) -> bool:
        """Would a lead of this rank be loaded before the hopper's last lead? Only meaningful under RANK orders."""
        if rank is None or self.last_hopper_rank is None or not self.hopper or not self.ranks_matter:
            return False
        if self.list_order == ListOrder.UP_RANK:
            return rank > self.last_hopper_rank
        return rank < self.last_hopper_rank


def needs_last_hopper_rank(
    action: Action, context: DialContext, lead_id: str | None, new_rank: int | None, uids: Iterable[str | None] = ()
) -> bool:
    """Whether the caveat depends on the hopper's last rank, so the caller fetches that lead only when it matters."""
    if context.campaign_error is not None:
        return False
    if action == "show" or new_rank is None or not context.dialling or not context.ranks_matter:
        return False
    if not context.hopper:
        return False
    return lead_id is None or context.hopper_position(lead_id, uids) is None


def change_caveats(action: Action, before: Lead | None, after: Lead, context: DialContext) -> tuple[Caveat, ...]:
    """The caveats for a change (`add` has no `before`), most important first; never empty."""
    rank_changed = before is None or before.rank != after.rank
    subject = Subject.NEW_LEAD if action == "add" else Subject.CHANGE
    final = (_final(after.status, subject),) if after.is_final else ()
    if context.campaign_error is not None:
        return (_campaign_unknown(context, subject), *final)
    if not context.dialling:
        return (_not_dialled(context, subject), *final)
    if final:
        return final
    order = (_order_ignores_rank(context, subject),) if rank_changed and not context.ranks_matter else ()
    if context.hopper is None:
        return (*order, _hopper_unknown(context, subject))
    size = len(context.hopper)
    position = context.hopper_position(after.id, (after.uid, before.uid if before is not None else None))
    if position is None and context.unnamed_entries:
        return (*order, _unnamed_entries(context, subject))
    if position is not None and action == "add":
        return (Caveat(CaveatKind.LOADED_NOW, subject, position=position, hopper_size=size),)
    if position is not None:
        return (_in_hopper(position, size, before, after), *order)
    if awaits_recycling(after):
        return (Caveat(CaveatKind.AWAITS_RECYCLING, subject, status=after.status), *order)
    if order:
        return order
    if rank_changed and context.is_ahead_of_hopper(after.rank):
        kind = CaveatKind.NEW_LEAD_AFTER_BATCH if action == "add" else CaveatKind.NEXT_BATCH
        return (Caveat(kind, subject, rank=after.rank, bound_rank=context.last_hopper_rank, hopper_size=size),)
    return (Caveat(CaveatKind.NEXT_REFILL, subject, hopper_size=size),)


def lead_state(lead: Lead, context: DialContext) -> Caveat:
    """Where a lead stands with the dialer, for `/lead show`."""
    shown = Subject.SHOWN
    if context.campaign_error is not None:
        return _campaign_unknown(context, shown)
    if not context.dialling:
        return _not_dialled(context, shown)
    if lead.is_final:
        return _final(lead.status, shown)
    if context.hopper is None:
        return _hopper_unknown(context, shown)
    size = len(context.hopper)
    position = context.hopper_position(lead.id, (lead.uid,))
    if position is None and context.unnamed_entries:
        return _unnamed_entries(context, shown)
    if position is not None:
        return Caveat(CaveatKind.IN_HOPPER, shown, position=position, hopper_size=size)
    if awaits_recycling(lead):
        return Caveat(CaveatKind.AWAITS_RECYCLING, shown, status=lead.status)
    return Caveat(CaveatKind.NOT_IN_HOPPER, shown, hopper_size=size)


def _in_hopper(position: int, size: int, before: Lead | None, after: Lead) -> Caveat:
    """Already loaded: what this dial still uses, field by field."""
    kept: list[Kept] = []
    if before is not None and before.rank != after.rank:
        kept.append(Kept.PLACE)
    if before is not None and before.number != after.number:
        kept.append(Kept.OLD_NUMBER)
    if before is not None and before.uid != after.uid:
        kept.append(Kept.OLD_UID)
    if before is not None and before.data != after.data:
        kept.append(Kept.OLD_DATA)
    return Caveat(
        CaveatKind.IN_HOPPER,
        position=position,
        hopper_size=size,
        kept=tuple(kept),
        old_number=before.number if before is not None else None,
        old_uid=before.uid if before is not None else None,
    )


def _not_dialled(context: DialContext, subject: Subject) -> Caveat:
    campaign = context.campaign
    return Caveat(
        CaveatKind.NOT_DIALLED,
        subject,
        list_name=context.list_name,
        campaign_name=campaign.name if campaign is not None else None,
    )


def _final(status: str | None, subject: Subject) -> Caveat:
    return Caveat(CaveatKind.FINAL_STATUS, subject, status=status)


def awaits_recycling(lead: Lead) -> bool:
    """Called already with an outcome that is neither final nor dialable (e.g. no_answer, busy): the dialer loads
    it again only when the campaign's recycling rules call it back, which the API does not expose."""
    return lead.status is not None and lead.status not in DIALABLE_STATUSES and not lead.is_final


def _campaign_unknown(context: DialContext, subject: Subject) -> Caveat:
    return Caveat(CaveatKind.CAMPAIGN_UNKNOWN, subject, list_name=context.list_name, reason=context.campaign_error)


def _order_ignores_rank(context: DialContext, subject: Subject) -> Caveat:
    return Caveat(
        CaveatKind.ORDER_IGNORES_RANK,
        subject,
        campaign_name=context.campaign.name if context.campaign else None,
        list_order=context.list_order,
    )


def _unnamed_entries(context: DialContext, subject: Subject) -> Caveat:
    """The lead matched no entry, but some entries name no lead: it may be one of them, so "not in the hopper"
    cannot be said. What can be: where it stands is unknown, and why."""
    size = len(context.hopper or ())
    return Caveat(
        CaveatKind.HOPPER_UNKNOWN,
        subject,
        campaign_name=context.campaign.name if context.campaign else None,
        reason=f"{context.unnamed_entries} of its {size} entries name no lead",
    )


def _hopper_unknown(context: DialContext, subject: Subject) -> Caveat:
    return Caveat(
        CaveatKind.HOPPER_UNKNOWN,
        subject,
        campaign_name=context.campaign.name if context.campaign else None,
        reason=context.hopper_error,
    )


def removal_caveat(lead_id: str, context: DialContext, *, before: DialContext | None = None) -> Caveat:
    """Whether a lead can still be called once it is deleted: only by a batch already holding it.

    Without `before`, `context` was read before the delete (the question: subject CHANGE). With it, `context` was
    read after the delete and `before` just before it (subject REMOVED): a lead loaded in `before` but not in
    `context` left the hopper; position and hopper_size then say where it was."""
    subject = Subject.REMOVED if before is not None else Subject.CHANGE
    was_at = before.hopper_position(lead_id) if before is not None else None
    size_before = len(before.hopper) if before is not None and before.hopper is not None else None
    campaign = context.campaign
    campaign_name = campaign.name if campaign is not None else None
    if context.campaign_error is not None or (context.dialling and context.hopper is None):
        return Caveat(
            CaveatKind.REMOVAL_UNKNOWN,
            subject,
            position=was_at,
            hopper_size=size_before,
            list_name=context.list_name,
            campaign_name=campaign_name if context.campaign_error is None else None,
            reason=context.campaign_error or context.hopper_error,
        )
    if not context.dialling or context.hopper is None:
        return Caveat(CaveatKind.NOT_LOADED, subject, list_name=context.list_name, campaign_name=campaign_name)
    size = len(context.hopper)
    position = context.hopper_position(lead_id)
    if position is not None:
        return Caveat(CaveatKind.STILL_LOADED, subject, position=position, hopper_size=size)
    return Caveat(
        CaveatKind.NOT_LOADED,
        subject,
        position=was_at,
        hopper_size=size,
        list_name=context.list_name,
        campaign_name=campaign_name,
    )


# ---------------------------------------------------------------------- /lead rank … top


def top_blocked(context: DialContext) -> Caveat | None:
    """Why no rank can head the next batch whatever the list holds (TOP_REFUSED), or None: worth reading the list."""
    campaign_name = context.campaign.name if context.campaign else None
    if context.campaign_error is not None:
        return Caveat(
            CaveatKind.TOP_REFUSED,
            refusal=TopRefusal.CAMPAIGN_UNKNOWN,
            list_name=context.list_name,
            reason=context.campaign_error,
        )
    if not context.dialling:
        return Caveat(
            CaveatKind.TOP_REFUSED,
            refusal=TopRefusal.NOT_DIALLED,
            list_name=context.list_name,
            campaign_name=campaign_name,
        )
    if not context.ranks_matter:
        return Caveat(
            CaveatKind.TOP_REFUSED,
            refusal=TopRefusal.ORDER_IGNORES_RANK,
            campaign_name=campaign_name,
            list_order=context.list_order,
        )
    return None


def top_rank(lead: Lead, context: DialContext, standings: ListStandings) -> Caveat:
    """The rank that makes `lead` head the next batch: under UP RANK one above the highest rank among the list's
    dialable leads not in the hopper, under DOWN RANK one below the lowest (TOP_RANK); its own rank when that
    already beats them all, or no other lead waits (ALREADY_TOP); or why there is none (TOP_REFUSED).

    A rank equal to the rival's is not enough: the dialer breaks ties by load order, which the API does not show.
    """
    blocked = top_blocked(context)
    if blocked is not None:
        return blocked
    if not standings.has_ranks:
        return Caveat(CaveatKind.TOP_REFUSED, refusal=TopRefusal.RANKS_UNKNOWN, list_name=context.list_name)
    loaded = {entry.id for entry in context.hopper} if context.hopper is not None else None
    basis = _top_basis(loaded is not None, standings.has_statuses)
    rivals = standings.selection(DIALABLE_STATUSES, not_ids=loaded or ())  # the dialable leads not loaded
    for place in standings.places_of(ids=(lead.id,)):
        rivals[place] = 0
    unranked = standings.count_unranked(rivals)
    if unranked:
        return Caveat(
            CaveatKind.TOP_REFUSED, refusal=TopRefusal.RANKS_UNKNOWN, list_name=context.list_name, unranked=unranked
        )
    order = context.list_order
    if not rivals.count(1):
        return Caveat(CaveatKind.ALREADY_TOP, rank=lead.rank, list_order=order, basis=basis)
    up = order == ListOrder.UP_RANK
    (first,) = standings.by_rank(rivals, 1, highest=up)  # the best rank; of equal ones, the first in list order
    rival = standings.standing(first)
    assert rival.rank is not None
    best_rank = rival.rank
    rival_name = rival.uid or rival.id

    def beyond(kind: CaveatKind, rank: int | None = None, refusal: TopRefusal | None = None) -> Caveat:
        return Caveat(
            kind,
            rank=rank,
            others=(rival_name,),
            other_rank=best_rank,
            list_order=order,
            basis=basis,
            refusal=refusal,
        )

    current = lead.rank
    if current is not None and (current > best_rank if up else current < best_rank):
        return beyond(CaveatKind.ALREADY_TOP, current)
    target = best_rank + 1 if up else best_rank - 1
    if not RANK_MIN <= target <= RANK_MAX:
        return beyond(CaveatKind.TOP_REFUSED, refusal=TopRefusal.AT_LIMIT)
    return beyond(CaveatKind.TOP_RANK, target)


def _top_basis(hopper_known: bool, statuses_known: bool) -> TopBasis:
    if hopper_known:
        return TopBasis.WAITING if statuses_known else TopBasis.NOT_IN_HOPPER
    return TopBasis.DIALABLE if statuses_known else TopBasis.ALL
