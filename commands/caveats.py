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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from babelforce.models import DIALABLE_STATUSES, Campaign, HopperEntry, Lead, ListOrder

Action = Literal["add", "rank", "set", "show", "undo"]

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


#: Caveats after which the change does nothing for dialling now (the ones worth an "apply anyway?").
NO_EFFECT_NOW = frozenset(
    {CaveatKind.IN_HOPPER, CaveatKind.ORDER_IGNORES_RANK, CaveatKind.NOT_DIALLED, CaveatKind.FINAL_STATUS}
)
#: Caveats that tell of a delay or an unknown; the rest are plain good news.
WARNINGS = NO_EFFECT_NOW | {
    CaveatKind.NEXT_BATCH,
    CaveatKind.NEW_LEAD_AFTER_BATCH,
    CaveatKind.HOPPER_UNKNOWN,
    CaveatKind.AWAITS_RECYCLING,
    CaveatKind.CAMPAIGN_UNKNOWN,
}


class Subject(StrEnum):
    """What a caveat speaks of: a change to a lead, a new lead, or a lead as it stands (/lead show)."""

    CHANGE = "change"
    NEW_LEAD = "new_lead"
    SHOWN = "shown"


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
