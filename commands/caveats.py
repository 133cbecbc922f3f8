"""Hopper caveats: will a change reach the dialer now, and if not, why and when?

Pure functions of the campaign, the hopper as read just before the change, and the lead before and after it.
The rules come from babelforce's article on updating leads (see DOMAIN.md):
- a lead already in the hopper ignores updates for this dial;
- a lead moved ahead of the hopper's leads is not added to the current batch: it heads the next one;
- a new lead is never compared with the hopper's leads;
- rank only orders dialling under the `UP RANK` / `DOWN RANK` list orders;
- leads with a final outcome are never loaded again, and a list no active campaign dials is not loaded at all.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Caveat:
    kind: CaveatKind
    text: str  # Slack mrkdwn, one or two plain sentences with the numbers

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

    def hopper_position(self, lead_id: str) -> int | None:
        """1-based position of the lead in the hopper, or None when it is not loaded (or unknown)."""
        for index, entry in enumerate(self.hopper or ()):
            if entry.id == lead_id:
                return entry.order if entry.order is not None else index + 1
        return None

    def is_ahead_of_hopper(self, rank: int | None) -> bool:
        """Would a lead of this rank be loaded before the hopper's last lead? Only meaningful under RANK orders."""
        if rank is None or self.last_hopper_rank is None or not self.hopper or not self.ranks_matter:
            return False
        if self.list_order == ListOrder.UP_RANK:
            return rank > self.last_hopper_rank
        return rank < self.last_hopper_rank


def needs_last_hopper_rank(action: Action, context: DialContext, lead_id: str | None, new_rank: int | None) -> bool:
    """Whether the caveat depends on the hopper's last rank, so the caller fetches that lead only when it matters."""
    if context.campaign_error is not None:
        return False
    if action == "show" or new_rank is None or not context.dialling or not context.ranks_matter:
        return False
    if not context.hopper:
        return False
    return lead_id is None or context.hopper_position(lead_id) is None


def change_caveats(action: Action, before: Lead | None, after: Lead, context: DialContext) -> tuple[Caveat, ...]:
    """The caveats for a change (`add` has no `before`), most important first; never empty."""
    rank_changed = before is None or before.rank != after.rank
    final = (_final(after.status),) if after.is_final else ()
    if context.campaign_error is not None:
        return (_campaign_unknown(context), *final)
    if not context.dialling:
        return (_not_dialled(context, new_lead=action == "add"), *final)
    if final:
        return final
    order = (_order_ignores_rank(context),) if rank_changed and not context.ranks_matter else ()
    if context.hopper is None:
        return (*order, _hopper_unknown(context, new_lead=action == "add"))
    size = len(context.hopper)
    position = context.hopper_position(after.id)
    if position is not None and action == "add":
        return (
            Caveat(
                CaveatKind.LOADED_NOW,
                f"*Loaded at once*: the hopper was below its minimum, so the new lead went straight in at position "
                f"{position} of {size}; it is dialled in this batch.",
            ),
        )
    if position is not None:
        return (_in_hopper(position, size, before, after), *order)
    if awaits_recycling(after):
        return (_awaits_recycling(after.status, show=False), *order)
    if order:
        return order
    if rank_changed and context.is_ahead_of_hopper(after.rank):
        if action == "add":
            return (
                Caveat(
                    CaveatKind.NEW_LEAD_AFTER_BATCH,
                    f"*Called after the current batch*: rank {after.rank} is ahead of the {_leads(size)} in the "
                    "hopper, but the dialer does not compare a new lead with leads already loaded; it is called "
                    "after them.",
                ),
            )
        return (
            Caveat(
                CaveatKind.NEXT_BATCH,
                f"*Not in the current batch*: rank {after.rank} puts it ahead of leads in the hopper, but the "
                f"dialer does not reload them. It will be first of the next batch, after the {_leads(size)} in "
                "the hopper (unless another waiting lead ranks higher).",
            ),
        )
    then = (
        "The dialer loads the new lead at a later refill."
        if action == "add"
        else "The dialer uses the new values when it next loads this lead."
    )
    return (
        Caveat(
            CaveatKind.NEXT_REFILL,
            f"*Takes effect at the next hopper refill*: the lead is not in the hopper ({_leads(size)} loaded). {then}",
        ),
    )


def lead_state(lead: Lead, context: DialContext) -> Caveat:
    """Where a lead stands with the dialer, for `/lead show`."""
    if context.campaign_error is not None:
        return _campaign_unknown(context)
    if not context.dialling:
        return _not_dialled(context, new_lead=False, show=True)
    if lead.is_final:
        return _final(lead.status)
    if context.hopper is None:
        return _hopper_unknown(context, show=True)
    size = len(context.hopper)
    position = context.hopper_position(lead.id)
    if position is not None:
        return Caveat(
            CaveatKind.IN_HOPPER,
            f"*In the hopper* at position {position} of {size}: it is dialled in this batch with the values it was "
            "loaded with; a change now does not reach this dial.",
        )
    if awaits_recycling(lead):
        return _awaits_recycling(lead.status, show=True)
    return Caveat(
        CaveatKind.NOT_IN_HOPPER,
        f"*Not in the hopper* ({_leads(size)} loaded): changes to it take effect when the dialer next loads leads.",
    )


def _in_hopper(position: int, size: int, before: Lead | None, after: Lead) -> Caveat:
    """Already loaded: say what this dial still uses, field by field."""
    still: list[str] = []
    if before is not None and before.rank != after.rank:
        still.append("the lead keeps its place")
    if before is not None and before.number != after.number:
        still.append(f"it is still called on the old number {escape(str(before.number))}")
    if before is not None and before.uid != after.uid:
        still.append(f"it still carries the old uid {escape(str(before.uid))}")
    if before is not None and before.data != after.data:
        still.append("the agent still sees the old data")
    detail = "; ".join(still) if still else "it is dialled with the values it was loaded with"
    return Caveat(
        CaveatKind.IN_HOPPER,
        f"*Already in the hopper* (position {position} of {size}): this change is not taken into account for this "
        f"dial; {detail}.",
    )


def campaign_line(context: DialContext) -> str:
    """One context line: which campaign dials the list, its order and the hopper's size."""
    campaign = context.campaign
    if campaign is None:
        return f"List *{escape(context.list_name)}* · no campaign dials it"
    state = "active" if campaign.active else "not active"
    order = context.list_order
    meaning = ORDER_MEANING.get(order, "")  # StrEnum keys: a plain "UP RANK" finds its meaning
    parts = [
        f"Campaign *{escape(campaign.name)}* ({state})",
        f"list order {order}" + (f" ({meaning})" if meaning else ""),
    ]
    if context.hopper is not None and context.dialling:
        parts.append(f"hopper {_leads(len(context.hopper))}")
    return " · ".join(parts)


def _not_dialled(context: DialContext, *, new_lead: bool, show: bool = False) -> Caveat:
    name = escape(context.list_name)
    if context.campaign is None:
        why = f"no campaign dials list *{name}*"
    else:
        why = f"campaign *{escape(context.campaign.name)}* that dials *{name}* is not active"
    then = (
        "It is called once a campaign dials this list."
        if show
        else "The rank applies when a campaign dials this list."
        if new_lead
        else "The change applies when a campaign dials this list."
    )
    return Caveat(CaveatKind.NOT_DIALLED, f"*Not dialled now*: {why}. {then}")


def _final(status: str | None) -> Caveat:
    return Caveat(
        CaveatKind.FINAL_STATUS,
        f"*Will not be dialled again*: its status is `{escape(str(status))}`, a final outcome, so the dialer "
        "never loads it again, whatever is changed.",
    )


def awaits_recycling(lead: Lead) -> bool:
    """Called already with an outcome that is neither final nor dialable (e.g. no_answer, busy): the dialer loads
    it again only when the campaign's recycling rules call it back, which the API does not expose."""
    return lead.status is not None and lead.status not in DIALABLE_STATUSES and not lead.is_final


def _awaits_recycling(status: str | None, *, show: bool) -> Caveat:
    then = "" if show else " The change counts from then."
    return Caveat(
        CaveatKind.AWAITS_RECYCLING,
        f"*Waits for recycling*: its last outcome is `{escape(str(status))}`, so the dialer loads it again only if "
        f"the campaign's recycling rules call it back.{then}",
    )


def _campaign_unknown(context: DialContext) -> Caveat:
    return Caveat(
        CaveatKind.CAMPAIGN_UNKNOWN,
        f"*Dialer state unknown*: could not read the campaign that dials list *{escape(context.list_name)}* "
        f"({context.campaign_error}), so leadbot cannot say when this takes effect.",
    )


def _order_ignores_rank(context: DialContext) -> Caveat:
    order = context.list_order
    meaning = ORDER_MEANING.get(order)
    how = f" ({meaning})" if meaning else ""
    name = escape(context.campaign.name) if context.campaign else "The campaign"
    return Caveat(
        CaveatKind.ORDER_IGNORES_RANK,
        f"*Rank does not change the dial order*: campaign *{name}* dials in list order {order}{how}, so rank is "
        "not used at all.",
    )


def _hopper_unknown(context: DialContext, *, show: bool = False, new_lead: bool = False) -> Caveat:
    name = escape(context.campaign.name) if context.campaign else "the campaign"
    reason = f" ({context.hopper_error})" if context.hopper_error else ""
    if show:
        then = "It may already be loaded."
    elif new_lead:
        then = "leadbot cannot say when the new lead is loaded."
    else:
        then = "If the lead is already loaded, this change waits for the next batch."
    return Caveat(CaveatKind.HOPPER_UNKNOWN, f"*Hopper unknown*: could not read the hopper of *{name}*{reason}. {then}")


def _leads(count: int) -> str:
    return f"{count} lead" if count == 1 else f"{count} leads"


def escape(text: str) -> str:
    """Escape the three characters Slack requires escaped in mrkdwn text (user and babelforce text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe(caveats: Sequence[Caveat]) -> str:
    """The caveats as plain text (notification fallback): markup removed."""
    return " ".join(caveat.text.replace("*", "").replace("`", "") for caveat in caveats)
